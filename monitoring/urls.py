from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("tests/<int:pk>/collected/", views.collected, name="collected"),
]
