from django.urls import path

from specimens import views

app_name = "specimens"

urlpatterns = [
    path("collection/", views.collection_list_page, name="collection-list"),
    path("collect/<int:patient_pk>/", views.collect, name="collect"),
    path("receive/", views.receive, name="receive"),
    path("<int:pk>/", views.specimen_page, name="detail"),
    path("<int:pk>/reject/", views.reject, name="reject"),
    path("<int:pk>/custody/", views.custody, name="custody"),
]
