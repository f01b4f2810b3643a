"""The alert-burden report of one team as JSON (alerts.burden)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.burden import alert_burden, burden_period, burden_team

BIGINT_MAX = 2**63 - 1


class AlertBurdenQuery(serializers.Serializer[Any]):
    team = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
    from_ = serializers.DateField(required=False)
    to = serializers.DateField(required=False)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # a Python keyword
        return fields


class KindCountSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    severity = serializers.IntegerField()
    count = serializers.IntegerField()


class AlertBurdenSerializer(serializers.Serializer[Any]):
    care_team_id = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    nurse_shifts = serializers.FloatField(help_text="12-hour shifts in the period.")
    oncologist_days = serializers.FloatField(help_text="Days in the period.")
    alerts_to_nurses = serializers.IntegerField(help_text="Alerts first shown in the period to the team's nurses.")
    alerts_to_oncologists = serializers.IntegerField()
    alerts_to_lab = serializers.IntegerField()
    per_nurse_shift = serializers.FloatField()
    per_oncologist_day = serializers.FloatField()
    escalations = serializers.IntegerField(help_text="Escalation steps taken in the period.")
    escalations_by_role = serializers.DictField(child=serializers.IntegerField())
    by_kind_severity = KindCountSerializer(many=True)
    acknowledged = serializers.IntegerField()
    median_minutes_to_acknowledge = serializers.FloatField(allow_null=True)
    p90_minutes_to_acknowledge = serializers.FloatField(allow_null=True)
    resolved_without_action = serializers.IntegerField(
        help_text="Alerts that resolved by themselves (automatic reason) and that nobody acknowledged."
    )
    resolved_without_action_share = serializers.FloatField()
    folded_repeats = serializers.IntegerField()
    worsened = serializers.IntegerField()


class AlertBurdenView(APIView):
    """The alert burden of a care team's patients over the local days `from`..`to` (default: the last 7 days).
    Superusers and the team's charge nurses, attendings and (covering) oncologists only: 403 for other members,
    404 for a team the user cannot see."""

    # No model permission fits "leads this team": alerts.burden.burden_team decides (a login is needed).
    required_permissions = None

    @extend_schema(
        parameters=[
            OpenApiParameter("team", OpenApiTypes.INT, required=True, description="Care team id."),
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (default: 6 days before `to`)."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, at most today (default: today)."),
        ],
        responses={200: AlertBurdenSerializer, 400: None, 403: None, 404: None},
    )
    def get(self, request: Request) -> Response:
        query = AlertBurdenQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        team = burden_team(user=request.user, team_id=query.validated_data["team"])
        start, end = burden_period(
            first_day=query.validated_data.get("from"), last_day=query.validated_data.get("to")
        )  # a ValidationError is a 400 naming the field (core.api.exception_handler)
        report = alert_burden(care_team=team, start=start, end=end)
        return Response(AlertBurdenSerializer(report).data)
