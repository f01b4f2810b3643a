from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet
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
from alerts.selectors import alert_list
from alerts.services import alert_acknowledge, alert_resolve


class AlertViewSet(viewsets.ReadOnlyModelViewSet[Alert]):
    """Alerts about the user's care teams' patients, most severe and newest first."""

    queryset = Alert.objects.none()  # for the schema; requests use get_queryset
    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet
    required_permissions = {
        "list": "alerts.view_alert",
        "retrieve": "alerts.view_alert",
        "acknowledge": "alerts.handle_alert",
        "resolve": "alerts.handle_alert",
    }

    def get_queryset(self) -> QuerySet[Alert]:
        return alert_list(user=self.request.user).prefetch_related("escalated_to", "escalations__recipients")

    def _step(self, request: Request, step: Callable[..., Alert]) -> Response:
        data = AlertStepSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = step(
            alert=self.get_object(),
            user=acting_user(request),
            now=timezone.now(),
            comment=data.validated_data["comment"],
        )
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=AlertStepSerializer, responses={200: AlertSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Single-shot: a second acknowledgement is 409."""
        return self._step(request, alert_acknowledge)

    @extend_schema(request=AlertStepSerializer, responses={200: AlertSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, alert_resolve)
