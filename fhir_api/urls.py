from django.urls import path, re_path

from fhir_api import views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path("<str:resource_type>", views.SearchView.as_view(), name="search"),
    path("<str:resource_type>/<str:pk>", views.ReadView.as_view(), name="read"),
    re_path(r"^.*$", views.not_found),
]
