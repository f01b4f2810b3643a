from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from labflow import health, metrics
from labflow.views import patient_chart, patient_timeline_page

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="alerts:inbox", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("alerts/", include("alerts.urls")),
    path("patients/", include("patients.urls")),
    path("patients/<int:pk>/", patient_chart, name="patient-chart"),
    path("patients/<int:pk>/timeline/", patient_timeline_page, name="patient-timeline"),
    path("specimens/", include("specimens.urls")),
    path("results/", include("results.urls")),
    path("assessments/", include("assessments.urls")),
    path("orders/", include("orders.urls")),
    path("api/", include("labflow.api_urls")),
    path("fhir/", include("fhir_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets style attributes; scripts stay same-origin (split view, no inline script).
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
    # Operations (docs/architecture.md §5): probes are unauthenticated and name no patient; /metrics needs a token.
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
]

# Under /api/ an unreadable request or an unknown URL answers the API's JSON error body, not the HTML page.
handler400 = "core.api.bad_request"
handler404 = "core.api.not_found"
