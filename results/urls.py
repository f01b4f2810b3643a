from django.urls import path

from results import views

app_name = "results"

urlpatterns = [
    path("specimen/<int:specimen_pk>/enter/", views.enter, name="enter"),
    path("enter/", views.enter_index, name="enter-index"),
    path("test/<int:lab_test_pk>/enter/", views.enter_by_test, name="enter-test"),
    path("verify/", views.verify_queue, name="verify"),
    path("review/", views.review, name="review"),
    path("<int:pk>/", views.result_page, name="detail"),
    path("<int:pk>/amend/", views.amend, name="amend"),
    path("patient/<int:patient_pk>/", views.timeline, name="timeline"),
    path("alerts/<int:alert_pk>/call/", views.critical_call, name="critical-call"),
    path("interface-errors/", views.interface_errors, name="interface-errors"),
    path("interface-errors/<int:pk>/resend/", views.interface_resend, name="interface-resend"),
]
