from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import acting_user
from assessments.api.serializers import AssessmentAmendSerializer, AssessmentCreateSerializer, AssessmentSerializer
from assessments.filtersets import AssessmentFilterSet
from assessments.models import Assessment
from assessments.selectors import assessment_list
from assessments.services import FINDING_FIELDS, assessment_amend, assessment_record
from core.api import ScopedViewSetMixin, action_permissions


class AssessmentViewSet(ScopedViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[Assessment]):
    """Bedside CRS and ICANS assessments with their ASTCT 2019 grades (null = pending), of the user's care teams'
    patients, newest first. Amended originals stay listed with `is_current` false."""

    selector = assessment_list
    serializer_class = AssessmentSerializer
    filterset_class = AssessmentFilterSet
    required_permissions = action_permissions(
        "assessments.view_assessment", create="assessments.add_assessment", amend="assessments.add_assessment"
    )

    def _detail(self, assessment: Assessment) -> Response:
        row = self.get_queryset().get(pk=assessment.pk)
        return Response(AssessmentSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AssessmentCreateSerializer, responses={201: AssessmentSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Record an assessment; the CRS and ICANS grades are computed and alerted. A finding out of range is a
        400 naming it."""
        data = self.validated(AssessmentCreateSerializer)
        assessment = assessment_record(user=acting_user(request), now=timezone.now(), **data)
        return self._detail(assessment)

    @extend_schema(request=AssessmentAmendSerializer, responses={201: AssessmentSerializer})
    @action(detail=True, methods=["post"])
    def amend(self, request: Request, pk: str | None = None) -> Response:
        """Correct a current assessment: a new assessment supersedes it, the original stays (409 if it was
        already amended)."""
        original = self.get_object()
        data = self.validated(AssessmentAmendSerializer)
        findings = {name: data.get(name, getattr(original, name)) for name in FINDING_FIELDS}
        assessment = assessment_amend(
            assessment=original,
            reason=data["reason"],
            assessed_at=data.get("assessed_at"),
            user=acting_user(request),
            now=timezone.now(),
            **findings,
        )
        return self._detail(assessment)
