from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_index, name="list"),
    path("search/", views.patient_search_page, name="search"),
]
