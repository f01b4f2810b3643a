"""LabFlow's URLs plus the baseline of the web benchmarks: a bare Django JSON view, no login, no queries."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from labflow.urls import urlpatterns as labflow_urlpatterns


def bare_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [*labflow_urlpatterns, path("bench/bare/", bare_json, name="bench-bare")]
