from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import acting_user
from alerts.api.serializers import AlertSerializer, AlertStepSerializer
from alerts.filtersets import AlertFilterSet
from alerts.models import Alert
from alerts.selectors import alert_list_with_escalations
from alerts.services import alert_acknowledge, alert_resolve
from core.api import ScopedViewSetMixin, action_permissions


class AlertViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet[Alert]):
    """Alerts about the user's care teams' patients, most severe and newest first."""

    selector = alert_list_with_escalations
    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet
    required_permissions = action_permissions(
        "alerts.view_alert", acknowledge="alerts.handle_alert", resolve="alerts.handle_alert"
    )

    def _step(self, request: Request, step: Callable[..., Alert]) -> Response:
        data = self.validated(AlertStepSerializer)
        alert = step(alert=self.get_object(), user=acting_user(request), now=timezone.now(), comment=data["comment"])
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=AlertStepSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Single-shot: a second acknowledgement is 409."""
        return self._step(request, alert_acknowledge)

    @extend_schema(request=AlertStepSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, alert_resolve)
