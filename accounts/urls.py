from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import LogoutView, keepalive

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="accounts/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("keepalive/", keepalive, name="keepalive"),
]
