from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import acting_user
from alerts.selectors import alert_ids_by_subject
from core.api import ScopedViewSetMixin, action_permissions
from monitoring.api.serializers import (
    CancelSerializer,
    LabTestSerializer,
    MonitoringTestCreateSerializer,
    MonitoringTestSerializer,
)
from monitoring.filtersets import MonitoringTestFilterSet
from monitoring.models import LabTest, MonitoringTest
from monitoring.selectors import lab_test_list, monitoring_test_list
from monitoring.services import monitoring_test_cancel, monitoring_test_schedule


class LabTestViewSet(viewsets.ReadOnlyModelViewSet[LabTest]):
    queryset = LabTest.objects.none()
    serializer_class = LabTestSerializer
    filterset_fields = ["loinc_code"]
    required_permissions = action_permissions("monitoring.view_labtest")

    def get_queryset(self) -> QuerySet[LabTest]:
        return lab_test_list()


class MonitoringTestViewSet(ScopedViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[MonitoringTest]):
    selector = monitoring_test_list
    serializer_class = MonitoringTestSerializer
    filterset_class = MonitoringTestFilterSet
    required_permissions = action_permissions(
        "monitoring.view_monitoringtest",
        create="monitoring.add_monitoringtest",
        cancel="monitoring.cancel_monitoringtest",
    )

    def row_context(self, rows: list[MonitoringTest]) -> dict[str, Any]:
        return {"alert_ids": alert_ids_by_subject(model=MonitoringTest, subject_ids=[t.pk for t in rows])}

    def _respond(self, test: MonitoringTest, code: int = status.HTTP_200_OK) -> Response:
        self.rows_shown([test])
        return Response(self.get_serializer(test).data, status=code)

    def retrieve(self, request: Request, *args: object, **kwargs: object) -> Response:
        return self._respond(self.get_object())

    @extend_schema(request=MonitoringTestCreateSerializer, responses={201: MonitoringTestSerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = self.validated(MonitoringTestCreateSerializer)
        test = monitoring_test_schedule(
            patient=data["patient"],
            lab_test=data["lab_test"],
            due_at=data["due_at"],
            grace_period=timedelta(minutes=data["grace_minutes"]),
            user=acting_user(request),
            now=timezone.now(),
        )
        return self._respond(test, status.HTTP_201_CREATED)

    @extend_schema(request=CancelSerializer, responses={200: MonitoringTestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        reason = self.validated(CancelSerializer)["reason"]
        test = monitoring_test_cancel(
            monitoring_test=self.get_object(), user=acting_user(request), now=timezone.now(), reason=reason
        )
        return self._respond(test)
