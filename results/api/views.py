from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import acting_user
from core.api import ScopedViewSetMixin, action_permissions
from results import services
from results.api.serializers import (
    AmendSerializer,
    CommentSerializer,
    CriticalCallSerializer,
    ResultEntrySerializer,
    ResultIdsSerializer,
    ResultSerializer,
    VerifyOutcomeSerializer,
)
from results.filtersets import CriticalCallFilterSet, ResultFilterSet
from results.models import CriticalCall, Result
from results.selectors import (
    critical_call_list,
    result_list,
    result_versions,
    results_to_verify,
    review_inbox,
    visible_results,
)


class ResultViewSet(ScopedViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[Result]):
    """Lab results, scoped to the user's care teams (all patients for lab staff)."""

    selector = result_list
    serializer_class = ResultSerializer
    filterset_class = ResultFilterSet
    required_permissions = action_permissions(
        "results.view_result",
        history="results.view_result",
        review_inbox="results.review_result",
        to_verify="results.verify_result",
        create="results.enter_result",
        verify="results.verify_result",
        verify_batch="results.verify_result",
        amend="results.amend_result",
        review="results.review_result",
        review_batch="results.review_result",
    )

    def _visible(self, ids: list[int]) -> list[Result]:
        return visible_results(user=self.request.user, ids=ids)

    @extend_schema(request=ResultEntrySerializer, responses={201: ResultSerializer(many=True)})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Enter results for one specimen: stored preliminary, flagged and graded."""
        data = self.validated(ResultEntrySerializer)
        entries = [
            services.ResultEntry(data["specimen"], r["lab_test"], r["value"], r["unit"]) for r in data["results"]
        ]
        rows = services.results_enter(entries=entries, user=acting_user(request), now=timezone.now())
        return Response(ResultSerializer(rows, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ResultSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Verify one result; verifying your own is refused (403)."""
        outcome = services.results_verify(results=[self.get_object()], user=acting_user(request), now=timezone.now())
        return Response(ResultSerializer(outcome.verified[0]).data)

    @extend_schema(
        request=ResultIdsSerializer, responses={200: VerifyOutcomeSerializer}, operation_id="results_verify_batch"
    )
    @action(detail=False, methods=["post"], url_path="verify")
    def verify_batch(self, request: Request) -> Response:
        """Verify a batch; your own results are skipped and listed."""
        rows = self._visible(self.validated(ResultIdsSerializer)["results"])
        if not rows:
            raise ValidationError({"results": "None of these results exists or is visible to you."})
        outcome = services.results_verify(results=rows, user=acting_user(request), now=timezone.now())
        body = {
            "verified": ResultSerializer(outcome.verified, many=True).data,
            "skipped_own": [r.pk for r in outcome.skipped_own],
            "alerts": outcome.alerts,
        }
        return Response(body)

    @extend_schema(request=AmendSerializer, responses={201: ResultSerializer})
    @action(detail=True, methods=["post"])
    def amend(self, request: Request, pk: str | None = None) -> Response:
        data = self.validated(AmendSerializer)
        amended = services.result_amend(result=self.get_object(), user=acting_user(request), now=timezone.now(), **data)
        return Response(ResultSerializer(amended).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ResultSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every version of the result, the original first."""
        rows = result_versions(result=self.get_object())
        return Response(ResultSerializer(rows, many=True).data)

    @extend_schema(request=CommentSerializer, responses={200: ResultSerializer})
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: str | None = None) -> Response:
        data = self.validated(CommentSerializer)
        (row,) = services.results_review(
            results=[self.get_object()], user=acting_user(request), now=timezone.now(), **data
        )
        return Response(ResultSerializer(row).data)

    @extend_schema(
        request=ResultIdsSerializer, responses={200: ResultSerializer(many=True)}, operation_id="results_review_batch"
    )
    @action(detail=False, methods=["post"], url_path="review")
    def review_batch(self, request: Request) -> Response:
        data = self.validated(ResultIdsSerializer)
        rows = services.results_review(
            results=self._visible(data["results"]),
            user=acting_user(request),
            now=timezone.now(),
            comment=data["comment"],
        )
        return Response(ResultSerializer(rows, many=True).data)

    @extend_schema(responses={200: ResultSerializer(many=True)})
    @action(detail=False, methods=["get"], url_path="review-inbox", filter_backends=[])
    def review_inbox(self, request: Request) -> Response:
        """Verified results not yet reviewed: critical first, then CTCAE grade, newest first."""
        page = self.paginate_queryset(review_inbox(user=request.user))
        return self.get_paginated_response(ResultSerializer(page, many=True).data)

    @extend_schema(responses={200: ResultSerializer(many=True)})
    @action(detail=False, methods=["get"], url_path="to-verify", filter_backends=[])
    def to_verify(self, request: Request) -> Response:
        """The verification queue, oldest first: results others entered that can be verified now (not your own,
        not superseded, retracted or not obtained, not still preliminary at the lab)."""
        page = self.paginate_queryset(results_to_verify(user=acting_user(request)))
        return self.get_paginated_response(ResultSerializer(page, many=True).data)


class CriticalCallViewSet(ScopedViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[CriticalCall]):
    """Read-back log of critical-result calls."""

    selector = critical_call_list
    serializer_class = CriticalCallSerializer
    filterset_class = CriticalCallFilterSet
    required_permissions = action_permissions("results.view_criticalcall", create="results.add_criticalcall")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self.validated(CriticalCallSerializer)
        call = services.critical_call_record(user=acting_user(request), now=timezone.now(), **data)
        return Response(CriticalCallSerializer(call).data, status=status.HTTP_201_CREATED)
