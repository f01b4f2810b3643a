from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import SafeSlugRelatedField
from core.fields import VisibleRelatedField
from orders.choices import (
    CoiStep,
    ComponentKind,
    CompoundingCategory,
    ExposureKind,
    GateVerdict,
    PremedicationClass,
    Storage,
    VerificationMethod,
)
from orders.gate import FindingKind, dose_gate
from orders.models import (
    Dose,
    DoseDecision,
    Drug,
    ExposureReport,
    HoldRule,
    IdentityCheck,
    MeasureField,
    MonitoringRule,
    Preparation,
    PreparationComponent,
    Regimen,
    RegimenStep,
    RescueMedicationCheck,
    TherapyPlan,
    TherapyPlanPhase,
    ToleranceCheck,
    TreatmentCourse,
    TreatmentPlan,
)
from orders.tolerance import FINDING_FIELDS
from patients.selectors import patient_list


class DrugSerializer(serializers.ModelSerializer[Drug]):
    class Meta:
        model = Drug
        fields = ["id", "name", "target", "strength_mg_per_ml", "vial_contents_mg", "allowed_diluents",
                  "concentration_min", "concentration_max", "stability_room", "stability_refrigerated",
                  "filter_note", "hazardous", "cell_therapy", "fresh_product", "intralesional", "preparer_exclusions",
                  "storage_note", "biosafety_level", "premedication", "thaw_to_infusion_limit", "rescue_drug",
                  "rescue_doses_required", "proximity_days", "no_driving_days", "source",
                  "effective_from"]  # fmt: skip
        read_only_fields = fields


class MonitoringRuleSerializer(serializers.ModelSerializer[MonitoringRule]):
    lab_test_name = serializers.CharField(source="lab_test.name", read_only=True)

    class Meta:
        model = MonitoringRule
        fields = ["id", "lab_test", "lab_test_name", "kind", "window_hours", "lead_hours", "every_nth_dose",
                  "interval_days", "day_from", "day_to", "grace_hours", "gates_dose"]  # fmt: skip
        read_only_fields = fields


class RegimenStepSerializer(serializers.ModelSerializer[RegimenStep]):
    class Meta:
        model = RegimenStep
        fields = ["dose_number", "day", "dose_amount", "step_up", "premedication_required", "premedication_classes",
                  "premedication", "premedication_within_hours", "hospital_stay_hours", "strength_mg_per_ml",
                  "vial_contents_mg", "preparation_note", "source", "effective_from"]  # fmt: skip
        read_only_fields = fields


class RegimenSerializer(serializers.ModelSerializer[Regimen]):
    monitoring_rules = MonitoringRuleSerializer(many=True, read_only=True)
    steps = RegimenStepSerializer(many=True, read_only=True)

    class Meta:
        model = Regimen
        fields = ["id", "name", "drug", "dose_basis", "dose_amount", "max_dose_mg", "cycle_days", "number_of_doses",
                  "infusion_minutes", "monitoring_rules", "cells_per_kg", "cells_per_kg_min", "cells_min", "cells_max",
                  "lymphodepletion", "first_interval_days", "pfu_per_ml_first_dose", "pfu_per_ml",
                  "max_volume_ml_per_visit", "source", "effective_from", "steps", "bag_hours_allowed",
                  "infusion_days"]  # fmt: skip
        read_only_fields = fields


class TherapyPlanPhaseSerializer(serializers.ModelSerializer[TherapyPlanPhase]):
    regimen_name = serializers.CharField(source="regimen.name", read_only=True)

    class Meta:
        model = TherapyPlanPhase
        fields = ["position", "regimen", "regimen_name", "starts_days_after_previous", "source", "effective_from"]
        read_only_fields = fields


class TherapyPlanSerializer(serializers.ModelSerializer[TherapyPlan]):
    phases = TherapyPlanPhaseSerializer(many=True, read_only=True)

    class Meta:
        model = TherapyPlan
        fields = ["id", "name", "phases", "source", "effective_from"]
        read_only_fields = fields


class HoldRuleSerializer(serializers.ModelSerializer[HoldRule]):
    lab_test_name = serializers.CharField(source="lab_test.name", read_only=True)

    class Meta:
        model = HoldRule
        fields = ["id", "key", "version", "lab_test", "lab_test_name", "drugs", "regimens", "comparator", "threshold",
                  "reference", "unit", "action", "lookback_days", "requires_result", "description", "source",
                  "effective_from", "active", "superseded_by", "created_at"]  # fmt: skip
        read_only_fields = fields


class FindingSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=[k.value for k in FindingKind])
    text = serializers.CharField()
    hold_rule = serializers.IntegerField(source="hold_rule_id", allow_null=True)


class DoseDecisionSerializer(serializers.ModelSerializer[DoseDecision]):
    class Meta:
        model = DoseDecision
        fields = ["id", "dose", "kind", "at", "by", "cosigned_by", "reason", "covers", "hold_rules"]
        read_only_fields = fields


class GateSerializer(serializers.Serializer[Any]):
    verdict = serializers.ChoiceField(choices=GateVerdict.choices)
    reasons = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField())
    findings = FindingSerializer(many=True)
    open_findings = FindingSerializer(many=True)
    hold_rules = serializers.ListField(child=serializers.IntegerField(), source="hold_rule_ids")
    decisions = DoseDecisionSerializer(many=True)


class DoseSerializer(serializers.ModelSerializer[Dose]):
    gate = serializers.SerializerMethodField()

    class Meta:
        model = Dose
        fields = ["id", "course", "number", "planned_at", "status", "cancel_reason", "bag_hours", "bag_step",
                  "starts_step", "gate"]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(GateSerializer)
    def get_gate(self, dose: Dose) -> dict[str, Any]:
        gates = self.context.get("gates") or {}
        gate = gates.get(dose.pk) or dose_gate(dose, now=self.context["now"])
        return GateSerializer(gate).data


class CosignSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)
    cosigner = SafeSlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), help_text="The second oncologist"
    )
    cosigner_password = serializers.CharField(max_length=200, trim_whitespace=False, style={"input_type": "password"})


class CourseSerializer(serializers.ModelSerializer[TreatmentCourse]):
    regimen_name = serializers.CharField(source="regimen.name", read_only=True)

    class Meta:
        model = TreatmentCourse
        fields = ["id", "patient", "regimen", "regimen_name", "starts_at", "status", "weight_kg_at_start",
                  "height_cm_at_start", "chain_of_identity", "started_by", "created_at", "stopped_at", "stopped_by",
                  "stop_reason", "treatment_plan", "phase_position", "bag_hours"]  # fmt: skip
        read_only_fields = fields


class TreatmentPlanSerializer(serializers.ModelSerializer[TreatmentPlan]):
    plan_name = serializers.CharField(source="plan.name", read_only=True)
    courses = CourseSerializer(many=True, read_only=True)

    class Meta:
        model = TreatmentPlan
        fields = ["id", "patient", "plan", "plan_name", "current_position", "finished", "starts_at", "started_by",
                  "created_at", "courses"]  # fmt: skip
        read_only_fields = fields


class TreatmentPlanStartSerializer(serializers.Serializer[Any]):
    patient = VisibleRelatedField(patient_list)
    plan = serializers.PrimaryKeyRelatedField(queryset=TherapyPlan.objects.filter(active=True))
    starts_at = serializers.DateTimeField()
    no_round_up = serializers.BooleanField(required=False, default=False, help_text="Never round a dose up to a vial")


class CourseStartSerializer(serializers.Serializer[Any]):
    patient = VisibleRelatedField(patient_list)
    regimen = serializers.PrimaryKeyRelatedField(queryset=Regimen.objects.filter(active=True))
    starts_at = serializers.DateTimeField()
    chain_of_identity = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
    no_round_up = serializers.BooleanField(required=False, default=False, help_text="Never round a dose up to a vial")
    bag_hours = serializers.IntegerField(
        required=False, default=None, allow_null=True, min_value=1, max_value=720,
        help_text="Continuous infusion: the bag duration chosen among the regimen's (bag_hours_allowed)",
    )  # fmt: skip


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


class MeasureDecimalField(serializers.DecimalField):
    """A measured dose or volume as it was calculated: "240.0" mg, "0.16" mg, "0.45" mL (orders.models.MeasureField
    keeps the scale; the API does not pad it to the column's largest)."""

    def to_representation(self, value: Any) -> str:
        return format(Decimal(value), "f")


class PreparationSerializer(serializers.ModelSerializer[Preparation]):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        MeasureField: MeasureDecimalField,
    }
    code = serializers.CharField(read_only=True)
    components = ComponentSerializer(many=True, read_only=True)
    identity_checks = IdentityCheckSerializer(many=True, read_only=True)
    patient = serializers.IntegerField(source="dose.course.patient_id", read_only=True)
    drug = serializers.CharField(source="dose.course.regimen.drug.name", read_only=True)
    hazardous = serializers.BooleanField(
        source="dose.course.regimen.drug.hazardous", read_only=True, help_text="USP <800> hazardous drug"
    )

    class Meta:
        model = Preparation
        fields = [
            "id", "code", "dose", "patient", "drug", "status", "calculation", "dose_mg", "volume_to_draw_ml",
            "final_volume_ml", "concentration_mg_per_ml", "diluent_bag_ml", "recalculation_needed", "ordered_at",
            "category", "storage", "prepared_by", "started_at", "ended_at", "beyond_use_at", "beyond_use_note",
            "components", "verified_by", "verified_at", "verification_method", "expected_value", "measured_value",
            "rejection_reason", "released_by", "released_at", "administered_by", "administration_started_at",
            "administration_ended_at", "wasted_reason", "identity_checks", "punctured_at", "infusion_end_by",
            "cells_target", "cells_min", "cells_max", "coa_cells", "coa_bag_volume_ml", "coa_lot", "coa_recorded_by",
            "coa_recorded_at", "bag_intact", "premedication_given_at", "premedication_note", "hazardous",
            "closed_system_device", "bag_identity", "collected_at", "product_expires_at", "concentration_pfu_per_ml",
            "max_volume_ml", "volume_ml_planned", "lesion_plan", "exclusion_confirmed_by", "exclusion_confirmed_at",
            "premedication_classes_given",
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
    punctured_at = serializers.DateTimeField(
        required=False, default=None, allow_null=True,
        help_text="First vial puncture or dilution (default: the start of preparation); the beyond-use clocks "
        "start here",
    )  # fmt: skip
    closed_system_device = serializers.CharField(
        max_length=80, required=False, default="", allow_blank=True,
        help_text="Hazardous drugs (USP <800>): the closed-system transfer device used; required to release",
    )  # fmt: skip
    bag_volume_ml = serializers.DecimalField(
        max_digits=6, decimal_places=1, min_value=Decimal("0.1"), max_value=Decimal(1000), required=False,
        default=None, allow_null=True,
        help_text="A bag of a continuous infusion: its final volume from the label's table (what is verified)",
    )  # fmt: skip


class VerifySerializer(serializers.Serializer[Any]):
    password = serializers.CharField(max_length=200, style={"input_type": "password"}, trim_whitespace=False)
    method = serializers.ChoiceField(choices=VerificationMethod.choices)
    measured = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=0, required=False, default=None, allow_null=True,
        help_text="Gravimetric (g) or volumetric (mL) methods",
    )  # fmt: skip
    coi_label = serializers.CharField(
        max_length=40, required=False, default="", allow_blank=True,
        help_text="Cell products: the chain-of-identity ID scanned from the bag",
    )  # fmt: skip
    bag_intact = serializers.BooleanField(
        required=False, default=None, allow_null=True, help_text="Cell products: the bag is intact (no leak or damage)"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["method"] == VerificationMethod.CELL_PRODUCT:
            if not attrs["coi_label"].strip():
                raise serializers.ValidationError({"coi_label": "Scan the bag's chain-of-identity label."})
            if attrs["bag_intact"] is None:
                raise serializers.ValidationError({"bag_intact": "Confirm whether the bag is intact."})
        elif attrs["measured"] is None:
            raise serializers.ValidationError({"measured": "Enter the measured value."})
        return attrs


class AdministerSerializer(serializers.Serializer[Any]):
    wristband = serializers.CharField(max_length=40)
    bag_label = serializers.CharField(
        max_length=40, source="label", help_text="The preparation code scanned from the bag label"
    )
    coi_label = serializers.CharField(
        max_length=40, required=False, default="", allow_blank=True,
        help_text="Cell products: the chain-of-identity ID scanned from the bag",
    )  # fmt: skip
    premedication_given_at = serializers.DateTimeField(
        required=False, default=None, allow_null=True,
        help_text="When the drug's premedication was given (at most 4 h before, not in the future)",
    )  # fmt: skip
    premedication_note = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True, help_text="What was given"
    )
    premedication_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=PremedicationClass.choices), required=False, default=list,
        max_length=len(PremedicationClass.values),
        help_text="Step-up doses: each premedication the step asks for, recorded as given",
    )  # fmt: skip


class CellReceiptSerializer(serializers.Serializer[Any]):
    coi_scanned = serializers.CharField(max_length=40, help_text="The chain-of-identity ID scanned at receipt")
    coa_cells = serializers.IntegerField(
        min_value=1, max_value=10**13, help_text="Certificate of analysis: viable (CAR+) cells in the bag"
    )
    coa_bag_volume_ml = serializers.DecimalField(
        max_digits=6, decimal_places=1, min_value=Decimal("0.1"), max_value=Decimal(1000),
        help_text="Certificate of analysis: bag volume (mL)",
    )  # fmt: skip
    coa_lot = serializers.CharField(max_length=60, help_text="Certificate of analysis: lot (batch)")


class CellThawSerializer(serializers.Serializer[Any]):
    coi_scanned = serializers.CharField(max_length=40, help_text="The chain-of-identity ID scanned from the bag")
    thawed_at = serializers.DateTimeField(
        required=False, default=None, allow_null=True,
        help_text="When the thaw started (the thaw-to-infusion limit counts from it). Default: now",
    )  # fmt: skip


class RescueCheckSerializer(serializers.Serializer[Any]):
    doses_on_hand = serializers.IntegerField(min_value=0, max_value=50)
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class RescueMedicationCheckSerializer(serializers.ModelSerializer[RescueMedicationCheck]):
    class Meta:
        model = RescueMedicationCheck
        fields = ["id", "course", "drug", "doses_on_hand", "confirmed_by", "at", "note"]
        read_only_fields = fields


class FreshCollectSerializer(serializers.Serializer[Any]):
    bag_identity = serializers.CharField(max_length=40, help_text="This dose's leukapheresis chain-of-identity ID")
    collected_at = serializers.DateTimeField(help_text="When the leukapheresis was done (within the last 7 days)")


class FreshReceiptSerializer(CellReceiptSerializer):
    expires_at = serializers.DateTimeField(help_text="The product's expiry date and time, from its label")


class ExclusionSerializer(serializers.Serializer[Any]):
    not_pregnant = serializers.BooleanField(help_text="The preparer confirms they are not pregnant")
    not_immunocompromised = serializers.BooleanField(help_text="The preparer confirms they are not immunocompromised")


class VirusThawSerializer(serializers.Serializer[Any]):
    lesions_cm = serializers.ListField(
        child=serializers.DecimalField(max_digits=5, decimal_places=2, min_value=Decimal("0.01"),
                                       max_value=Decimal(50)),
        min_length=1, max_length=50, help_text="Each lesion's longest dimension (cm); volumes are planned from it",
    )  # fmt: skip
    vial_lot = serializers.CharField(max_length=40)
    vial_expiry = serializers.DateField()
    thawed_at = serializers.DateTimeField(required=False, default=None, allow_null=True, help_text="Default: now")


class ExposureInputSerializer(serializers.Serializer[Any]):
    person = serializers.CharField(max_length=120, help_text="Who was exposed")
    occurred_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=ExposureKind.choices)
    what = serializers.CharField(max_length=2000, help_text="What happened")
    action_taken = serializers.CharField(max_length=2000, help_text="What was done about it")


class ExposureReportSerializer(serializers.ModelSerializer[ExposureReport]):
    drug_name = serializers.CharField(source="drug.name", read_only=True)

    class Meta:
        model = ExposureReport
        fields = ["id", "preparation", "drug", "drug_name", "person", "occurred_at", "kind", "what", "action_taken",
                  "reported_by", "reported_at"]  # fmt: skip
        read_only_fields = fields


class ToleranceCheckInputSerializer(serializers.Serializer[Any]):
    """The findings of a bedside tolerance check (orders/tolerance.py); leave out what was not assessed."""

    checked_at = serializers.DateTimeField(required=False)
    systolic_bp_mmhg = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    target_systolic_mmhg = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    vasopressors = serializers.BooleanField(required=False, allow_null=True, default=None)
    heart_rate_bpm = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    new_arrhythmia = serializers.BooleanField(required=False, allow_null=True, default=None)
    spo2_percent = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    oxygen_l_min = serializers.DecimalField(max_digits=4, decimal_places=1, required=False, allow_null=True)
    urine_ml_per_kg_h = serializers.DecimalField(max_digits=4, decimal_places=2, required=False, allow_null=True)
    creatinine_mg_dl = serializers.DecimalField(max_digits=4, decimal_places=2, required=False, allow_null=True)
    mental_status_changed = serializers.BooleanField(required=False, allow_null=True, default=None)


class ToleranceCheckSerializer(serializers.ModelSerializer[ToleranceCheck]):
    class Meta:
        model = ToleranceCheck
        fields = ["id", "dose", "checked_at", "checked_by", "recorded_at", *FINDING_FIELDS, "verdict", "reasons",
                  "missing"]  # fmt: skip
        read_only_fields = fields
