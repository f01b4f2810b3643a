# ruff: noqa: RUF001  (the expected texts carry the multiplication sign)
"""The dose gate against the current labels: graded hold rules with actions, fail closed, two-oncologist
decisions, versioned rules, and the regimen's dose limits (weight bands, volume cap, course window, rounding)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import ProgrammingError, transaction
from django.utils import timezone

from accounts.choices import Role
from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.models import Alert
from orders.choices import GateCheckPurpose, GateVerdict
from orders.gate import dose_gate
from orders.models import Drug, GateCheck, HoldRule, Regimen, RegimenDoseBand
from orders.services.courses import course_reschedule
from orders.services.doses import dose_continue_cosigned, dose_override, hold_rule_revise
from orders.services.errors import OrderConflict
from orders.services.preparations import preparation_start
from orders.versioning import RuleVersionConflict
from results.models import ReferenceRange
from tests import factories
from tests.orders.helpers import clear_pre_dose, first_dose, live_preparation, start_course

pytestmark = pytest.mark.django_db

PEMBRO = "Pembrolizumab 200 mg q3w"


@pytest.fixture
def second_oncologist(team_a):
    return factories.make_user(Role.ONCOLOGIST, team_a, "onc.a2")


def _gate_with(patient, oncologist, nurse, technicians, regimen=PEMBRO, **values):
    dose = first_dose(start_course(patient, oncologist, regimen))
    clear_pre_dose(dose, nurse, technicians[0], technicians[1], values=values)
    return dose, dose_gate(dose, now=timezone.now())


# ALT ULN 56, AST ULN 40, bilirubin ULN 1.2, creatinine ULN 1.04 (female), glucose 250 mg/dL absolute.
@pytest.mark.parametrize(
    ("analyte", "value", "unit", "verdict", "text"),
    [
        ("ALT", "168", "U/L", GateVerdict.CLEARED, None),  # 3.0 x
        ("ALT", "174", "U/L", GateVerdict.WITHHELD, "ALT 174 U/L = 3.1 × ULN > 3 × ULN: withhold"),
        ("ALT", "448", "U/L", GateVerdict.WITHHELD, "ALT 448 U/L = 8.0 × ULN > 3 × ULN: withhold"),  # 8.0 x
        ("ALT", "454", "U/L", GateVerdict.DISCONTINUED, "ALT 454 U/L = 8.1 × ULN > 8 × ULN: permanently discontinue"),
        ("AST", "120", "U/L", GateVerdict.CLEARED, None),
        ("AST", "124", "U/L", GateVerdict.WITHHELD, "AST 124 U/L = 3.1 × ULN > 3 × ULN: withhold"),
        ("AST", "324", "U/L", GateVerdict.DISCONTINUED, "AST 324 U/L = 8.1 × ULN > 8 × ULN"),
        ("Total bilirubin", "1.8", "mg/dL", GateVerdict.CLEARED, None),
        ("Total bilirubin", "1.9", "mg/dL", GateVerdict.WITHHELD, "Total bilirubin 1.9 mg/dL = 1.6 × ULN > 1.5"),
        ("Total bilirubin", "3.6", "mg/dL", GateVerdict.WITHHELD, "> 1.5 × ULN"),
        ("Total bilirubin", "3.7", "mg/dL", GateVerdict.DISCONTINUED, "= 3.1 × ULN > 3 × ULN"),
        ("Creatinine", "1.56", "mg/dL", GateVerdict.CLEARED, None),  # 1.5 x 1.04
        ("Creatinine", "1.57", "mg/dL", GateVerdict.WITHHELD, "Creatinine 1.57 mg/dL = 1.51 × ULN > 1.5 × ULN"),
        ("Creatinine", "6.24", "mg/dL", GateVerdict.WITHHELD, "> 1.5 × ULN"),
        ("Creatinine", "6.25", "mg/dL", GateVerdict.DISCONTINUED, "> 6 × ULN: permanently discontinue"),
        ("Glucose", "250", "mg/dL", GateVerdict.CLEARED, None),
        ("Glucose", "251", "mg/dL", GateVerdict.WITHHELD, "Glucose 251 mg/dL > 250 mg/dL: withhold"),
        ("Neutrophils (ANC)", "1.00", "10*3/uL", GateVerdict.CLEARED, None),
        ("Neutrophils (ANC)", "0.99", "10*3/uL", GateVerdict.WITHHELD, "< 1 10*3/uL: withhold (site policy (GK))"),
        ("Platelets", "50", "10*3/uL", GateVerdict.CLEARED, None),
        ("Platelets", "49", "10*3/uL", GateVerdict.WITHHELD, "Platelets 49 10*3/uL < 50 10*3/uL"),
    ],
)
def test_each_seeded_rule_at_below_and_above_its_limits(
    oncologist_a, nurse_a, patient_a, technicians, analyte, value, unit, verdict, text
):
    _, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians, **{analyte: (value, unit)})
    assert gate.verdict == verdict, gate.findings
    if text is None:
        assert gate.findings == []
    else:
        assert any(text in reason for reason in gate.reasons), gate.reasons


def test_reason_names_rule_value_limit_action_and_source(oncologist_a, nurse_a, patient_a, technicians):
    _, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians, ALT=("200", "U/L"))
    assert gate.reasons == [
        "ALT 200 U/L = 3.6 × ULN > 3 × ULN: withhold "
        "(Keytruda, Tecentriq, Opdivo PI §2 dose modifications (class wording))"
    ]
    rule = HoldRule.objects.get(key="alt-withhold", active=True)
    assert rule.pk in gate.hold_rule_ids


@pytest.mark.parametrize(
    ("regimen", "value", "verdict"),
    [
        ("Cemiplimab 350 mg q3w", "454", GateVerdict.WITHHELD),  # 8.1 x: cemiplimab stops only above 10 x
        ("Cemiplimab 350 mg q3w", "560", GateVerdict.WITHHELD),  # 10.0 x
        ("Cemiplimab 350 mg q3w", "566", GateVerdict.DISCONTINUED),  # 10.1 x
        ("Ipilimumab 3 mg/kg q3w x4", "280", GateVerdict.WITHHELD),  # 5.0 x
        ("Ipilimumab 3 mg/kg q3w x4", "286", GateVerdict.DISCONTINUED),  # 5.1 x
    ],
)
def test_drug_specific_discontinue_limits(oncologist_a, nurse_a, patient_a, technicians, regimen, value, verdict):
    _, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians, regimen, ALT=(value, "U/L"))
    assert gate.verdict == verdict, gate.reasons


def test_cell_therapy_is_not_held_by_checkpoint_inhibitor_rules(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Axicabtagene ciloleucel single infusion", chain_of_identity="COI-1")
    gate = dose_gate(first_dose(course), now=timezone.now())
    assert not [f for f in gate.findings if f.hold_rule_id]


# --- fail closed ---------------------------------------------------------------------------------------------


def test_no_result_in_the_window_is_pending_never_cleared(oncologist_a, patient_a):
    dose = first_dose(start_course(patient_a, oncologist_a, PEMBRO))
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.PENDING
    assert any(p.startswith("No verified ALT result in the 14 days before the dose") for p in gate.pending)
    assert not any(p.startswith("No verified Troponin") for p in gate.pending)  # decides only when measured


def test_a_list_row_folds_pending_findings_by_kind_naming_each_test_once(oncologist_a, patient_a):
    dose = first_dose(start_course(patient_a, oncologist_a, PEMBRO))
    gate = dose_gate(dose, now=timezone.now())
    summary = gate.pending_summary
    not_collected = [line for line in summary if line.startswith("Not collected yet: ")]
    no_result = [line for line in summary if line.startswith("No verified result yet for the hold rules on: ")]
    assert len(not_collected) == 1
    assert len(no_result) == 1
    assert "CBC with differential" in not_collected[0]
    names = no_result[0].removeprefix("No verified result yet for the hold rules on: ").split(", ")
    assert "ALT" in names
    assert len(names) == len(set(names))  # ALT has two rules (3 and 5 x ULN): named once
    assert len(summary) == 2 < len(gate.pending)


def test_a_list_row_shows_an_unfoldable_pending_finding_in_full():
    from orders.gate import Finding, FindingKind, Gate

    odd = Finding("hold:alt:v1:no-range:7", FindingKind.PENDING, "ALT result has no reference range (ULN)", 1, "ALT")
    waiting = Finding("lab:3:result-pending", FindingKind.PENDING, "TSH collected, result pending", None, "TSH")
    held = Finding("hold:alt:v1:result:8", FindingKind.WITHHOLD, "ALT 300 U/L = 7.5 x ULN > 5 x ULN", 1, "ALT")
    gate = Gate(GateVerdict.WITHHELD, [odd, waiting, held])
    assert gate.pending_summary == [
        "Collected, verified result pending: TSH",
        "ALT result has no reference range (ULN)",
    ]


def test_result_without_reference_range_is_pending(oncologist_a, nurse_a, patient_a, technicians):
    ReferenceRange.objects.filter(lab_test__name="ALT").update(high=None)
    _, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians)
    assert gate.verdict == GateVerdict.PENDING
    assert any("ALT result has no reference range (ULN)" in p for p in gate.pending)


def test_unit_that_cannot_be_converted_is_pending(oncologist_a, nurse_a, patient_a, technicians):
    rule = HoldRule.objects.get(key="glucose-withhold", active=True)
    hold_rule_revise(rule=rule, changes={"unit": "g"}, user=None, now=timezone.now())
    _, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians)
    assert gate.verdict == GateVerdict.PENDING
    assert any("cannot be converted to 'g'" in p for p in gate.pending)


def test_troponin_above_its_upper_limit_withholds(oncologist_a, nurse_a, patient_a, technicians):
    dose = first_dose(start_course(patient_a, oncologist_a, PEMBRO))
    clear_pre_dose(
        dose, nurse_a, technicians[0], technicians[1], values={"Troponin I (high-sensitivity)": ("90", "ng/L")}
    )
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.WITHHELD
    assert any("Troponin" in r and "myocarditis" not in r.split(":")[0] for r in gate.reasons)


# --- decisions -----------------------------------------------------------------------------------------------


def test_withhold_is_overridden_by_one_oncologist_and_only_for_what_they_saw(
    oncologist_a, nurse_a, patient_a, technicians
):
    dose, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians, ALT=("200", "U/L"))
    assert gate.verdict == GateVerdict.WITHHELD
    with pytest.raises(ValidationError):
        dose_override(dose=dose, user=oncologist_a, now=timezone.now(), reason=" ")
    dose_override(dose=dose, user=oncologist_a, now=timezone.now(), reason="Liver metastases; stable")
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.OVERRIDDEN
    assert GateCheck.objects.get(dose=dose, purpose=GateCheckPurpose.DECISION).verdict == GateVerdict.WITHHELD
    # A new, worse result is a new finding: the dose is held again.
    clear_pre_dose_again(dose, nurse_a, technicians, {"Platelets": ("40", "10*3/uL")})
    gate = dose_gate(dose, now=timezone.now())
    assert gate.verdict == GateVerdict.WITHHELD
    assert [f.text.split(" ")[0] for f in gate.open_findings] == ["Platelets"]


def clear_pre_dose_again(dose, nurse, technicians, values):
    """A repeat draw: another specimen for the same analytes, verified (latest result wins)."""
    from labflow.demo import NORMAL_RESULTS
    from monitoring.models import LabTest
    from monitoring.services import monitoring_test_schedule
    from results.services import ResultEntry, results_enter, results_verify
    from specimens.services import specimens_collect

    patient, now = dose.course.patient, timezone.now()
    cbc = LabTest.objects.get(name="CBC with differential")
    test = monitoring_test_schedule(patient=patient, lab_test=cbc, due_at=now, grace_period=timedelta(hours=1),
                                    user=nurse, now=now)  # fmt: skip
    [specimen] = specimens_collect(patient=patient, wristband=patient.mrn, monitoring_tests=[test], user=nurse, now=now)
    wanted = {**NORMAL_RESULTS, **values}
    entries = [ResultEntry(specimen, c, *wanted[c.name]) for c in cbc.components.all()]
    results_verify(results=results_enter(entries=entries, user=technicians[0], now=now), user=technicians[1], now=now)


def test_discontinue_needs_two_oncologists_and_alerts_them(
    api_as, oncologist_a, second_oncologist, nurse_a, patient_a, technicians
):
    dose, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians, ALT=("454", "U/L"))
    assert gate.verdict == GateVerdict.DISCONTINUED
    # One alert for the ALT result names its grade and the discontinuation rule it meets for the next dose.
    alert = Alert.objects.get(patient=patient_a, kind=AlertKind.TOXICITY)
    assert alert.audience == AlertAudience.ONCOLOGISTS
    assert alert.severity == AlertSeverity.HIGH
    (rule,) = [f for f in alert.findings if f["key"].startswith(f"dose:{dose.pk}:rule:")]
    assert "ALT 454 U/L = 8.1 × ULN > 8 × ULN" in rule["label"]
    assert rule["severity"] == AlertSeverity.HIGH
    with pytest.raises(OrderConflict, match="two oncologists"):
        dose_override(dose=dose, user=oncologist_a, now=timezone.now(), reason="I think it is fine")
    onc = api_as(oncologist_a)
    assert onc.post(f"/api/doses/{dose.pk}/override/", {"reason": "fine"}).status_code == 409
    with pytest.raises(PermissionDenied):
        dose_continue_cosigned(dose=dose, user=oncologist_a, cosigner=oncologist_a, now=timezone.now(),
                               cosigner_password="a-long-test-password", reason="x",
                               request=factories.signing_request())  # fmt: skip
    body = {"reason": "Tumour flare in the liver, MDT decision", "cosigner": "onc.a2", "cosigner_password": "wrong"}
    assert onc.post(f"/api/doses/{dose.pk}/continue-cosigned/", body).status_code == 403
    assert dose_gate(dose, now=timezone.now()).verdict == GateVerdict.DISCONTINUED
    body["cosigner_password"] = "a-long-test-password"
    response = onc.post(f"/api/doses/{dose.pk}/continue-cosigned/", body)
    assert response.status_code == 200, response.content
    gate_json = response.json()["gate"]
    assert gate_json["verdict"] == "cosigned"
    assert gate_json["decisions"][0]["cosigned_by"] == second_oncologist.pk
    preparation_start(preparation=live_preparation(dose), user=technicians[0], now=timezone.now())
    check = GateCheck.objects.get(dose=dose, purpose=GateCheckPurpose.START)
    assert check.verdict == GateVerdict.COSIGNED
    assert set(check.hold_rules.values_list("key", flat=True)) >= {"alt-withhold", "alt-discontinue"}


def test_cosigner_must_be_an_oncologist_of_the_care_team(oncologist_a, nurse_a, patient_a, technicians, team_b):
    dose, _ = _gate_with(patient_a, oncologist_a, nurse_a, technicians, ALT=("454", "U/L"))
    other_team = factories.make_user(Role.ONCOLOGIST, team_b, "onc.b")
    for cosigner, field in ((other_team, "care team"), (nurse_a, "not an oncologist"), (None, "second oncologist")):
        with pytest.raises(ValidationError, match=field):
            dose_continue_cosigned(dose=dose, user=oncologist_a, cosigner=cosigner, now=timezone.now(),
                                   cosigner_password="a-long-test-password", reason="x",
                                   request=factories.signing_request())  # fmt: skip


def test_technician_cannot_start_a_withheld_dose(api_as, oncologist_a, nurse_a, patient_a, technicians):
    dose, _ = _gate_with(patient_a, oncologist_a, nurse_a, technicians, Platelets=("40", "10*3/uL"))
    response = api_as(technicians[0]).post(f"/api/preparations/{live_preparation(dose).pk}/start/")
    assert response.status_code == 409
    assert "Dose withheld: Platelets 40 10*3/uL < 50 10*3/uL" in response.json()["detail"]


# --- versioned rules -----------------------------------------------------------------------------------------


def test_editing_a_rule_makes_a_new_version_and_the_old_one_cannot_change(
    oncologist_a, nurse_a, patient_a, technicians
):
    old = HoldRule.objects.get(key="platelets-withhold", active=True)
    new = hold_rule_revise(rule=old, changes={"threshold": Decimal(75)}, user=oncologist_a, now=timezone.now())
    old.refresh_from_db()
    assert (old.active, old.superseded_by, new.version) == (False, new, old.version + 1)
    assert set(new.drugs.all()) == set(old.drugs.all())
    with pytest.raises(RuleVersionConflict):
        hold_rule_revise(rule=old, changes={"threshold": Decimal(60)}, user=None, now=timezone.now())
    with pytest.raises(ProgrammingError), transaction.atomic():
        HoldRule.objects.filter(pk=new.pk).update(threshold=Decimal(10))
    with pytest.raises(ValidationError):
        hold_rule_revise(rule=new, changes={"unit": ""}, user=None, now=timezone.now())
    _, gate = _gate_with(patient_a, oncologist_a, nurse_a, technicians, Platelets=("60", "10*3/uL"))
    assert gate.verdict == GateVerdict.WITHHELD
    assert new.pk in gate.hold_rule_ids
    assert old.pk not in gate.hold_rule_ids
    assert f"(v{new.version})" not in gate.reasons[0]  # the reason reads like the label, the version is recorded


# --- dose limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("weight", "dose_mg"), [("25.0", "500.0"), ("29.9", "600.0"), ("30.0", "1500.0")])
def test_durvalumab_weight_band(oncologist_a, patient_a, weight, dose_mg):
    patient_a.weight_kg = Decimal(weight)
    patient_a.save()
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, "Durvalumab 1500 mg q4w")))
    assert prep.dose_mg == Decimal(dose_mg)


def test_a_band_can_refuse_the_regimen(oncologist_a, patient_a):
    regimen = Regimen.objects.get(name="Durvalumab 1500 mg q4w")
    RegimenDoseBand.objects.filter(regimen=regimen, weight_below_kg=30).update(
        refuse=True, note="Under 30 kg: use the weight-based regimen"
    )
    patient_a.weight_kg = Decimal("25.0")
    patient_a.save()
    with pytest.raises(ValidationError, match="Under 30 kg: use the weight-based regimen"):
        start_course(patient_a, oncologist_a, "Durvalumab 1500 mg q4w")


def test_nivolumab_final_volume_cap(oncologist_a, patient_a):
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, "Nivolumab 480 mg q4w")))
    assert prep.final_volume_ml is not None
    assert prep.final_volume_ml <= Decimal(160)
    assert prep.calculation["max_final_volume_ml"] == "160.0"
    patient_a.weight_kg = Decimal("15.0")  # 4 mL/kg = 60 mL; 24 mL of drug + the smallest bag is 74 mL
    patient_a.save()
    with pytest.raises(ValidationError) as refused:
        start_course(patient_a, oncologist_a, "Nivolumab 240 mg q2w")
    assert "final_volume" in refused.value.message_dict


def test_ipilimumab_rounds_to_the_nearest_vial_combination_unless_the_course_says_no(oncologist_a, patient_a):
    patient_a.weight_kg = Decimal("80.0")  # 3 mg/kg = 240 mg
    patient_a.save()
    rounded = live_preparation(first_dose(start_course(patient_a, oncologist_a, "Ipilimumab 3 mg/kg q3w x4")))
    assert rounded.dose_mg == Decimal("250.0")
    exact = live_preparation(
        first_dose(start_course(patient_a, oncologist_a, "Ipilimumab 3 mg/kg q3w x4", no_round_up=True))
    )
    assert exact.dose_mg == Decimal("240.0")


def test_ipilimumab_small_dose_is_given_undiluted(oncologist_a, patient_a):
    patient_a.weight_kg = Decimal("20.0")  # 60 mg = 12 mL: any bag dilutes it below 1 mg/mL
    patient_a.save()
    prep = live_preparation(first_dose(start_course(patient_a, oncologist_a, "Ipilimumab 3 mg/kg q3w x4")))
    assert prep.diluent_bag_ml is None
    assert prep.concentration_mg_per_ml == Decimal("5.00")


def test_ipilimumab_course_window_blocks_late_doses_without_override(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, "Ipilimumab 3 mg/kg q3w x4")
    fourth = course.doses.get(number=4)
    first = first_dose(course)
    assert fourth.planned_at - first.planned_at == timedelta(days=63)
    now = timezone.now()
    course_reschedule(dose=fourth, planned_at=first.planned_at + timedelta(days=112), user=oncologist_a, now=now)
    fourth.refresh_from_db()
    assert not any(f.kind == "limit" for f in dose_gate(fourth, now=now).findings)  # day 112: still inside
    course_reschedule(dose=fourth, planned_at=first.planned_at + timedelta(days=113), user=oncologist_a, now=now)
    fourth.refresh_from_db()
    gate = dose_gate(fourth, now=now)
    assert gate.verdict == GateVerdict.BLOCKED
    assert any("beyond the 112-day course window" in r for r in gate.reasons)
    with pytest.raises(OrderConflict, match="cannot be overridden"):
        dose_override(dose=fourth, user=oncologist_a, now=now, reason="patient was away")


def test_label_facts_in_the_catalogue():
    nivolumab = Drug.objects.get(name="Nivolumab")
    assert nivolumab.stability_refrigerated == timedelta(days=7)
    assert nivolumab.source
    assert Drug.objects.get(name="Atezolizumab").bag_sizes_ml == [Decimal(250)]
    assert Drug.objects.get(name="Ipilimumab").may_give_undiluted is True
    assert Regimen.objects.get(name="Axicabtagene ciloleucel single infusion").cells_max == 200_000_000


def test_baseline_rules_compare_with_the_patients_baseline_and_fail_closed_without_one():
    from monitoring.models import LabTest
    from orders.gate import FindingKind, evaluate_hold_rule
    from results.models import Result

    creatinine = LabTest.objects.get(name="Creatinine")
    rule = HoldRule(key="creatinine-baseline", version=1, lab_test=creatinine, comparator="gt",
                    threshold=Decimal(2), reference="baseline", action="withhold", description="x", pk=1)  # fmt: skip

    def result(value: str) -> Result:
        return Result(lab_test=creatinine, value_numeric=Decimal(value), unit="mg/dL", decimal_places=2, pk=7)

    missing = evaluate_hold_rule(rule, result("2.5"), None)
    assert missing is not None
    assert missing.kind is FindingKind.PENDING
    assert missing.text.startswith("No baseline Creatinine result before the first dose")
    assert evaluate_hold_rule(rule, result("2.00"), result("1.00")) is None  # 2.0 x: not above
    broken = evaluate_hold_rule(rule, result("2.10"), result("1.00"))
    assert broken is not None
    assert broken.kind is FindingKind.WITHHOLD
    assert broken.text.startswith("Creatinine 2.10 mg/dL = 2.1 × baseline > 2 × baseline: withhold")
