from django.urls import path

from orders import views, views_coi

app_name = "orders"

urlpatterns = [
    path("worklist/", views.worklist_page, name="worklist"),
    path("preparations/<int:pk>/start/", views.start, name="start"),
    path("preparations/<int:pk>/prepare/", views.prepare, name="prepare"),
    path("vial-scan/", views.vial_scan, name="vial-scan"),
    path("verification/", views.verification_page, name="verification"),
    path("preparations/<int:pk>/verify/", views.verify, name="verify"),
    path("preparations/<int:pk>/release/", views.release, name="release"),
    path("ward/", views.ward_preparations, name="ward"),
    path("exposures/", views.exposures, name="exposures"),
    path("preparations/<int:pk>/administer/", views.administer, name="administer"),
    path("doses/<int:pk>/tolerance/", views.tolerance_check, name="tolerance-check"),
    path("courses/<int:pk>/", views.course_page, name="course"),
    path("courses/<int:pk>/identity/", views_coi.course_identity, name="course-identity"),
    path("courses/<int:pk>/stop/", views.course_stop_page, name="course-stop"),
    path("patients/<int:patient_pk>/new-course/", views.course_new, name="course-new"),
]
