from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import acting_user
from alerts.models import Alert
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
    required_permissions = {"list": "monitoring.view_labtest", "retrieve": "monitoring.view_labtest"}

    def get_queryset(self) -> QuerySet[LabTest]:
        return lab_test_list()


class MonitoringTestViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[MonitoringTest]):
    queryset = MonitoringTest.objects.none()  # for the schema; requests use get_queryset
    serializer_class = MonitoringTestSerializer
    filterset_class = MonitoringTestFilterSet
    required_permissions = {
        "list": "monitoring.view_monitoringtest",
        "retrieve": "monitoring.view_monitoringtest",
        "create": "monitoring.add_monitoringtest",
        "cancel": "monitoring.cancel_monitoringtest",
    }

    def get_queryset(self) -> QuerySet[MonitoringTest]:
        return monitoring_test_list(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "alert_ids": getattr(self, "_alert_ids", {})}

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        self._attach_alert_ids(list(page or []))
        return page

    def _attach_alert_ids(self, tests: list[MonitoringTest]) -> None:
        content_type = ContentType.objects.get_for_model(MonitoringTest)
        self._alert_ids = dict(
            Alert.objects.filter(subject_type=content_type, subject_id__in=[t.pk for t in tests]).values_list(
                "subject_id", "id"
            )
        )

    def _respond(self, test: MonitoringTest, code: int = status.HTTP_200_OK) -> Response:
        self._attach_alert_ids([test])
        return Response(self.get_serializer(test).data, status=code)

    def retrieve(self, request: Request, *args: object, **kwargs: object) -> Response:
        return self._respond(self.get_object())

    @extend_schema(request=MonitoringTestCreateSerializer, responses={201: MonitoringTestSerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = MonitoringTestCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        test = monitoring_test_schedule(
            patient=data.validated_data["patient"],
            lab_test=data.validated_data["lab_test"],
            due_at=data.validated_data["due_at"],
            grace_period=timedelta(minutes=data.validated_data["grace_minutes"]),
            user=acting_user(request),
            now=timezone.now(),
        )
        return self._respond(test, status.HTTP_201_CREATED)

    @extend_schema(request=CancelSerializer, responses={200: MonitoringTestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        data = CancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        test = monitoring_test_cancel(
            monitoring_test=self.get_object(),
            user=acting_user(request),
            now=timezone.now(),
            reason=data.validated_data["reason"],
        )
        return self._respond(test)
