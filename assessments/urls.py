from django.urls import path

from assessments import views

app_name = "assessments"

urlpatterns = [
    path("patients/<int:patient_pk>/", views.history, name="history"),
    path("patients/<int:patient_pk>/new/", views.new, name="new"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/amend/", views.amend, name="amend"),
]
