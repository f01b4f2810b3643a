from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import acting_user
from core.api import FileNegotiation, ScopedViewSetMixin, action_permissions
from specimens.api.serializers import (
    CollectSerializer,
    ContainerSerializer,
    CustodyEventSerializer,
    CustodySerializer,
    ReceiveSerializer,
    RejectSerializer,
    RequirementSerializer,
    SpecimenSerializer,
)
from specimens.filtersets import SpecimenFilterSet
from specimens.labels import label_pdf, label_zpl
from specimens.models import Container, Specimen, TestSpecimenRequirement
from specimens.selectors import (
    collection_due_by,
    collection_list,
    container_list,
    requirement_list,
    specimen_detail,
    specimen_label,
)
from specimens.services import (
    specimen_label_printed,
    specimen_receive,
    specimen_record_custody,
    specimen_reject,
    specimens_collect,
)


class ContainerViewSet(viewsets.ReadOnlyModelViewSet[Container]):
    queryset = container_list()
    serializer_class = ContainerSerializer
    required_permissions = action_permissions("specimens.view_container")


class RequirementViewSet(viewsets.ReadOnlyModelViewSet[TestSpecimenRequirement]):
    queryset = requirement_list()
    serializer_class = RequirementSerializer
    required_permissions = action_permissions("specimens.view_container")


class SpecimenViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet[Specimen]):
    """Specimens of the user's care teams' patients (every patient for lab staff)."""

    selector = specimen_detail
    serializer_class = SpecimenSerializer
    filterset_class = SpecimenFilterSet
    required_permissions = action_permissions(
        "specimens.view_specimen",
        collect="specimens.collect_specimen",
        receive="specimens.receive_specimen",
        reject="specimens.reject_specimen",
        custody="specimens.record_custody",
        label_pdf="specimens.view_specimen",
        label_zpl="specimens.view_specimen",
    )

    def _detail(self, specimen: Specimen, code: int = status.HTTP_200_OK) -> Response:
        return Response(SpecimenSerializer(self.get_queryset().get(pk=specimen.pk)).data, status=code)

    @extend_schema(request=CollectSerializer, responses={201: SpecimenSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def collect(self, request: Request) -> Response:
        """Wristband check, then one specimen per container for the chosen tests; each must be overdue or due
        within the collection window (a later one is refused: 400 naming `monitoring_tests`)."""
        data = self.validated(CollectSerializer)
        specimens = specimens_collect(user=acting_user(request), now=timezone.now(), **data)
        rows = self.get_queryset().filter(pk__in=[s.pk for s in specimens]).order_by("container__draw_order")
        return Response(SpecimenSerializer(rows, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReceiveSerializer, responses={200: SpecimenSerializer})
    @action(detail=False, methods=["post"])
    def receive(self, request: Request) -> Response:
        """Receive a specimen in the lab by its scanned accession number."""
        data = self.validated(ReceiveSerializer)
        return self._detail(specimen_receive(user=acting_user(request), now=timezone.now(), **data))

    @extend_schema(request=RejectSerializer, responses={200: SpecimenSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        data = self.validated(RejectSerializer)
        specimen = specimen_reject(specimen=self.get_object(), user=acting_user(request), now=timezone.now(), **data)
        return self._detail(specimen)

    @extend_schema(request=CustodySerializer, responses={201: CustodyEventSerializer})
    @action(detail=True, methods=["post"])
    def custody(self, request: Request, pk: str | None = None) -> Response:
        data = self.validated(CustodySerializer)
        event = specimen_record_custody(specimen=self.get_object(), user=acting_user(request), now=timezone.now(),
                                        **data)  # fmt: skip
        return Response(CustodyEventSerializer(event).data, status=status.HTTP_201_CREATED)

    def _label(self, request: Request, render: Any, content_type: str, suffix: str) -> HttpResponse:
        specimen = self.get_object()
        body = render(specimen_label(specimen), tz=timezone.get_current_timezone())
        specimen_label_printed(specimen=specimen, user=acting_user(request), now=timezone.now())
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="specimen-{specimen.pk}.{suffix}"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="label/pdf", content_negotiation_class=FileNegotiation)
    def label_pdf(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The tube label as PDF; each print after the first is logged as a reprint."""
        return self._label(request, label_pdf, "application/pdf", "pdf")

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="label/zpl", content_negotiation_class=FileNegotiation)
    def label_zpl(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The tube label as ZPL for a 203 dpi thermal printer."""
        return self._label(request, label_zpl, "text/plain; charset=utf-8", "zpl")


class CollectionListQuery(serializers.Serializer[Any]):
    ward = serializers.CharField(max_length=60)


class CollectionTestSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="pk")
    lab_test = serializers.CharField(source="lab_test.name")
    loinc_code = serializers.CharField(source="lab_test.loinc_code")
    due_at = serializers.DateTimeField()
    status = serializers.CharField()


class CollectionTubeSerializer(serializers.Serializer[Any]):
    container = ContainerSerializer(allow_null=True)
    min_volume_ml = serializers.DecimalField(max_digits=4, decimal_places=1, allow_null=True)
    tests = CollectionTestSerializer(many=True)


class CollectionPatientSerializer(serializers.Serializer[Any]):
    patient = serializers.IntegerField(source="patient.pk")
    tubes = CollectionTubeSerializer(many=True)


class CollectionListView(APIView):
    """The tests to draw now on a ward (overdue or due within the collection window,
    `SPECIMEN_COLLECTION_WINDOW_HOURS`), grouped by patient, tubes in order of draw."""

    required_permissions = {"get": "monitoring.view_monitoringtest"}

    @extend_schema(
        parameters=[OpenApiParameter("ward", str, required=True)],
        responses={200: CollectionPatientSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = CollectionListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        due_by = collection_due_by(timezone.now())
        draws = collection_list(user=request.user, ward=query.validated_data["ward"], due_by=due_by)
        return Response(CollectionPatientSerializer(draws, many=True).data)
