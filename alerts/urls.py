from django.urls import path

from alerts import burden_views, events, views

app_name = "alerts"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("inbox/", views.inbox_partial, name="inbox-partial"),
    path("badge/", views.badge, name="badge"),
    path("events/", events.events, name="events"),
    path("burden/", burden_views.burden, name="burden"),
    path("burden/metrics", burden_views.burden_metrics, name="burden-metrics"),
    path("<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:pk>/resolve/", views.resolve, name="resolve"),
]
