from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.choices import CoiStep, ComponentKind, CompoundingCategory, Storage, VerificationMethod
from orders.models import (
    Dose,
    Drug,
    HoldRule,
    IdentityCheck,
    MonitoringRule,
    Preparation,
    PreparationComponent,
    Regimen,
    TreatmentCourse,
)
from orders.services import dose_gate
from patients.models import Patient
from patients.selectors import patient_list


class DrugSerializer(serializers.ModelSerializer[Drug]):
    class Meta:
        model = Drug
        fields = ["id", "name", "target", "strength_mg_per_ml", "vial_contents_mg", "allowed_diluents",
                  "concentration_min", "concentration_max", "stability_room", "stability_refrigerated",
                  "filter_note", "hazardous", "cell_therapy"]  # fmt: skip
        read_only_fields = fields


class MonitoringRuleSerializer(serializers.ModelSerializer[MonitoringRule]):
    lab_test_name = serializers.CharField(source="lab_test.name", read_only=True)

    class Meta:
        model = MonitoringRule
        fields = ["id", "lab_test", "lab_test_name", "kind", "window_hours", "lead_hours", "every_nth_dose",
                  "interval_days", "day_from", "day_to", "grace_hours", "gates_dose"]  # fmt: skip
        read_only_fields = fields


class RegimenSerializer(serializers.ModelSerializer[Regimen]):
    monitoring_rules = MonitoringRuleSerializer(many=True, read_only=True)

    class Meta:
        model = Regimen
        fields = ["id", "name", "drug", "dose_basis", "dose_amount", "max_dose_mg", "cycle_days", "number_of_doses",
                  "infusion_minutes", "monitoring_rules"]  # fmt: skip
        read_only_fields = fields


class HoldRuleSerializer(serializers.ModelSerializer[HoldRule]):
    class Meta:
        model = HoldRule
        fields = ["id", "lab_test", "regimen", "comparator", "threshold", "reference", "lookback_days", "description"]
        read_only_fields = fields


class GateSerializer(serializers.Serializer[Any]):
    verdict = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField())


class DoseSerializer(serializers.ModelSerializer[Dose]):
    gate = serializers.SerializerMethodField()

    class Meta:
        model = Dose
        fields = ["id", "course", "number", "planned_at", "status", "cancel_reason", "override_by", "override_at",
                  "override_reason", "gate"]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(GateSerializer)
    def get_gate(self, dose: Dose) -> dict[str, Any]:
        gates = self.context.get("gates") or {}
        gate = gates.get(dose.pk) or dose_gate(dose, now=self.context["now"])
        return {"verdict": gate.verdict, "reasons": gate.reasons, "pending": gate.pending}


class CourseSerializer(serializers.ModelSerializer[TreatmentCourse]):
    regimen_name = serializers.CharField(source="regimen.name", read_only=True)

    class Meta:
        model = TreatmentCourse
        fields = ["id", "patient", "regimen", "regimen_name", "starts_at", "status", "weight_kg_at_start",
                  "height_cm_at_start", "chain_of_identity", "started_by", "created_at", "stopped_at", "stopped_by",
                  "stop_reason"]  # fmt: skip
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class _VisiblePatientField(serializers.PrimaryKeyRelatedField[Patient]):
    def get_queryset(self) -> Any:
        return patient_list(user=self.context["request"].user)


class CourseStartSerializer(serializers.Serializer[Any]):
    patient = _VisiblePatientField()
    regimen = serializers.PrimaryKeyRelatedField(queryset=Regimen.objects.filter(active=True))
    starts_at = serializers.DateTimeField()
    chain_of_identity = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)


class ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class RescheduleSerializer(serializers.Serializer[Any]):
    dose = serializers.IntegerField(min_value=1)
    planned_at = serializers.DateTimeField()


class HandoffSerializer(serializers.Serializer[Any]):
    step = serializers.ChoiceField(choices=CoiStep.choices)
    scanned = serializers.CharField(max_length=40)
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class IdentityCheckSerializer(serializers.ModelSerializer[IdentityCheck]):
    class Meta:
        model = IdentityCheck
        fields = ["id", "preparation", "course", "step", "at", "by", "scanned_wristband", "scanned_label", "matched",
                  "note"]  # fmt: skip
        read_only_fields = fields


class ComponentSerializer(serializers.ModelSerializer[PreparationComponent]):
    class Meta:
        model = PreparationComponent
        fields = ["kind", "product", "lot", "expiry", "volume_ml", "count"]


class PreparationSerializer(serializers.ModelSerializer[Preparation]):
    code = serializers.CharField(read_only=True)
    components = ComponentSerializer(many=True, read_only=True)
    identity_checks = IdentityCheckSerializer(many=True, read_only=True)
    patient = serializers.IntegerField(source="dose.course.patient_id", read_only=True)
    drug = serializers.CharField(source="dose.course.regimen.drug.name", read_only=True)

    class Meta:
        model = Preparation
        fields = [
            "id", "code", "dose", "patient", "drug", "status", "calculation", "dose_mg", "volume_to_draw_ml",
            "final_volume_ml", "concentration_mg_per_ml", "diluent_bag_ml", "recalculation_needed", "ordered_at",
            "category", "storage", "prepared_by", "started_at", "ended_at", "beyond_use_at", "beyond_use_note",
            "components", "verified_by", "verified_at", "verification_method", "expected_value", "measured_value",
            "rejection_reason", "released_by", "released_at", "administered_by", "administration_started_at",
            "administration_ended_at", "wasted_reason", "identity_checks",
        ]  # fmt: skip
        read_only_fields = fields


class ComponentInputSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=ComponentKind.choices)
    product = serializers.CharField(max_length=80)
    lot = serializers.CharField(max_length=40)
    expiry = serializers.DateField()
    volume_ml = serializers.DecimalField(max_digits=8, decimal_places=1, min_value=0, max_value=1000)
    count = serializers.IntegerField(min_value=1, max_value=50, default=1)


class RecordSerializer(serializers.Serializer[Any]):
    components = ComponentInputSerializer(many=True, allow_empty=False)
    category = serializers.ChoiceField(choices=CompoundingCategory.choices)
    storage = serializers.ChoiceField(choices=Storage.choices)


class VerifySerializer(serializers.Serializer[Any]):
    password = serializers.CharField(max_length=200, style={"input_type": "password"}, trim_whitespace=False)
    method = serializers.ChoiceField(choices=VerificationMethod.choices)
    measured = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=0)


class AdministerSerializer(serializers.Serializer[Any]):
    wristband = serializers.CharField(max_length=40)
    bag_label = serializers.CharField(max_length=40, help_text="The preparation code scanned from the bag label")
