"""Cell-therapy follow-up after day 14 (orders 0008/0009, monitoring 0013; docs/clinical-sources.md §8): the
"every n days after the infusion" rules, the CBC and IgG plan to month 3, the IgG-below-IVIG-threshold alert, and
the proximity / no-driving periods on the patient chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.choices import AlertAudience, AlertKind, AlertSeverity
from alerts.models import Alert
from monitoring.models import LabTest
from orders.admin import MonitoringRuleInline
from orders.choices import DoseStatus, RuleKind
from orders.models import CourseMonitoringTest, Dose, Drug, LabPatternRule, MonitoringRule, Preparation, Regimen
from orders.services.courses import _rule_due_times
from results.models import ReferenceRange, Result
from results.services import ResultEntry, results_enter, results_verify
from specimens.models import TestSpecimenRequirement as SpecimenRequirement
from specimens.services import specimens_collect
from tests import factories
from tests.orders.helpers import first_dose, start_course

CAR_T = "Axicabtagene ciloleucel single infusion"
PEMBRO = "Pembrolizumab 200 mg q3w"
CBC, IGG = "CBC with differential", "IgG"
IGG_RULE = "cell-therapy-igg-below-ivig-threshold"
INFUSION = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _after_infusion(day_from: int | None, day_to: int | None, interval: int | None = None) -> MonitoringRule:
    return MonitoringRule(
        kind=RuleKind.DAILY_AFTER_INFUSION, day_from=day_from, day_to=day_to, interval_days=interval, gates_dose=False
    )


def _days(rule: MonitoringRule, doses=(), starts_at: datetime = INFUSION) -> list[float]:
    times = _rule_due_times(rule, list(doses), starts_at)
    assert all(dose is None for _, dose in times)  # never tied to (nor gating) a dose
    return [(due - INFUSION) / timedelta(days=1) for due, _ in times]


# --- The rule kind: pure due times -----------------------------------------------------------------------------


def test_a_rule_of_an_unknown_kind_is_refused_not_skipped():
    with pytest.raises(ValueError, match="unknown kind 'weekly_by_magic'"):
        _rule_due_times(MonitoringRule(kind="weekly_by_magic"), [], INFUSION)


def test_no_interval_is_daily_from_day_0_the_infusion_to_day_to_included():
    assert _days(_after_infusion(0, 3)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("day_from", "day_to", "interval", "expected"),
    [
        (21, 28, 7, [21, 28]),  # day_to included when the step lands on it
        (60, 90, 30, [60, 90]),
        (30, 90, 30, [30, 60, 90]),
        (30, 89, 30, [30, 60]),  # ... and not stretched when it does not
        (14, 14, 7, [14]),  # a single day
        (0, 14, 1, list(range(15))),  # interval 1 is the old daily rule
    ],
)
def test_interval_steps_from_day_from(day_from, day_to, interval, expected):
    assert _days(_after_infusion(day_from, day_to, interval)) == expected


def test_day_0_is_the_first_dose_not_the_course_start():
    dose = Dose(number=1, planned_at=INFUSION)
    assert _days(_after_infusion(21, 28, 7), doses=[dose], starts_at=INFUSION - timedelta(days=5)) == [21, 28]


def test_without_doses_day_0_is_the_course_start():
    assert _days(_after_infusion(7, 7), starts_at=INFUSION) == [7]


# --- Refusing a bad rule ---------------------------------------------------------------------------------------


def _full_clean_errors(rule: MonitoringRule) -> dict[str, list[str]]:
    rule.regimen = Regimen.objects.get(name=CAR_T)
    rule.lab_test = LabTest.objects.get(name=CBC)
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    return caught.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        (_after_infusion(28, 21, 7), "day_to", "before day 28"),
        (_after_infusion(21, 28, 0), "interval_days", "at least 1 day"),
        (_after_infusion(21, None, 7), "day_to", "up to which day"),
        (_after_infusion(None, 28, 7), "day_from", "from which day"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(rule, field, words):
    errors = _full_clean_errors(rule)
    assert field in errors
    assert any(words in message for message in errors[field])


@pytest.mark.django_db
def test_a_good_rule_passes_and_the_database_refuses_reversed_days():
    rule = _after_infusion(21, 28, 7)
    rule.regimen, rule.lab_test = Regimen.objects.get(name=CAR_T), LabTest.objects.get(name=CBC)
    rule.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        MonitoringRule.objects.create(
            regimen=rule.regimen, lab_test=rule.lab_test, kind=rule.kind, day_from=28, day_to=21
        )


@pytest.mark.django_db
def test_the_admin_form_refuses_a_bad_rule_naming_the_field(rf, oncologist_a):
    regimen = Regimen.objects.get(name=CAR_T)
    request = rf.get("/admin/")
    request.user = oncologist_a
    form_class = MonitoringRuleInline(Regimen, admin.site).get_formset(request, obj=regimen).form
    data = {
        "regimen": regimen.pk, "lab_test": LabTest.objects.get(name=CBC).pk, "kind": RuleKind.DAILY_AFTER_INFUSION,
        "window_hours": 72, "lead_hours": 24, "grace_hours": 72, "interval_days": 7, "day_from": 28, "day_to": 21,
    }  # fmt: skip
    form = form_class(data=data, instance=MonitoringRule(regimen=regimen))
    assert not form.is_valid()
    assert "day_to" in form.errors
    form = form_class(data={**data, "day_from": 21, "day_to": 28}, instance=MonitoringRule(regimen=regimen))
    assert form.is_valid(), form.errors


@pytest.mark.django_db
def test_existing_daily_rules_keep_their_meaning():
    daily = MonitoringRule.objects.filter(regimen__name=CAR_T, kind=RuleKind.DAILY_AFTER_INFUSION, day_to=14)
    assert daily.exists()
    assert set(daily.values_list("interval_days", flat=True)) == {None}


# --- The seeded plan -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_car_t_course_gets_cbc_d21_d28_d60_d90_and_igg_d30_d60_d90(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, CAR_T, chain_of_identity="COI-2026-000555")
    infusion = first_dose(course).planned_at
    links = list(CourseMonitoringTest.objects.filter(course=course).select_related("monitoring_test__lab_test", "rule"))

    def due_days(name: str, *, after: int = 14) -> list[timedelta]:
        due = sorted(
            link.monitoring_test.due_at - infusion for link in links if link.monitoring_test.lab_test.name == name
        )
        return [d for d in due if d > timedelta(days=after)]

    assert due_days(CBC) == [timedelta(days=d) for d in (21, 28, 60, 90)]
    assert due_days(IGG, after=-1) == [timedelta(days=d) for d in (30, 60, 90)]
    assert len(due_days(CBC, after=-1)) == 15 + 4  # the daily D0-14 counts stay
    follow_up = [link for link in links if link.rule.interval_days is not None]
    assert len(follow_up) == 7
    assert all(link.dose is None and not link.rule.gates_dose for link in follow_up)
    assert {link.monitoring_test.grace_period for link in follow_up} == {timedelta(hours=72)}


@pytest.mark.django_db
def test_checkpoint_inhibitor_course_gets_no_igg(oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, PEMBRO)
    assert not CourseMonitoringTest.objects.filter(course=course, monitoring_test__lab_test__name=IGG).exists()


@pytest.mark.django_db
def test_igg_is_in_the_catalogue_with_loinc_unit_range_and_tube():
    igg = LabTest.objects.get(loinc_code="2465-3")
    assert igg.name == IGG
    assert igg.result_spec.unit == "mg/dL"
    assert igg.turnaround == timedelta(hours=24)
    rng = ReferenceRange.objects.get(lab_test=igg)
    assert (rng.low, rng.high) == (Decimal(700), Decimal(1600))
    assert SpecimenRequirement.objects.get(lab_test=igg).container.code == "GOLD_SST"


# --- IgG below the IVIG threshold ------------------------------------------------------------------------------


def _verify_igg(patient, lab, nurse, at: datetime, value: str) -> list[Result]:
    test = factories.make_test(patient, name=IGG, due_at=at)
    specimens = specimens_collect(patient=patient, wristband=patient.mrn, monitoring_tests=[test], user=nurse, now=at)
    rows = results_enter(entries=[ResultEntry(specimens[0], test.lab_test, value, "mg/dL")], user=lab[0], now=at)
    return results_verify(results=rows, user=lab[1], now=at).verified


def _igg_alerts():
    return Alert.objects.filter(kind=AlertKind.LAB_PATTERN, summary__startswith="IgG below the IVIG threshold")


@pytest.mark.django_db
def test_the_seeded_threshold_is_the_setting(settings):
    condition = LabPatternRule.objects.get(key=IGG_RULE, active=True).conditions.get()
    assert (condition.change, condition.unit) == ("below", "mg/dL")
    assert condition.threshold == Decimal(settings.IGG_IVIG_THRESHOLD_MG_DL) == Decimal(400)


@pytest.mark.django_db
def test_igg_below_400_after_a_car_t_alerts_the_oncologists_once(oncologist_a, patient_a, nurse_a, technicians):
    course = start_course(patient_a, oncologist_a, CAR_T, in_hours=1, chain_of_identity="COI-2026-000556")
    day_30 = first_dose(course).planned_at + timedelta(days=30)
    _verify_igg(patient_a, technicians, nurse_a, day_30, "520")
    assert not _igg_alerts().exists()
    _verify_igg(patient_a, technicians, nurse_a, day_30 + timedelta(days=30), "380")
    alert = _igg_alerts().get()
    assert alert.patient_id == patient_a.pk
    assert alert.audience == AlertAudience.ONCOLOGISTS
    assert alert.severity == AlertSeverity.MODERATE
    assert "IgG 380 mg/dL (< 400 mg/dL)" in alert.summary
    _verify_igg(patient_a, technicians, nurse_a, day_30 + timedelta(days=60), "350")
    assert _igg_alerts().count() == 1  # one alert per course


@pytest.mark.django_db
def test_igg_below_400_on_a_checkpoint_inhibitor_raises_nothing(oncologist_a, patient_a, nurse_a, technicians):
    course = start_course(patient_a, oncologist_a, PEMBRO, in_hours=1)
    _verify_igg(patient_a, technicians, nurse_a, first_dose(course).planned_at + timedelta(days=30), "300")
    assert not _igg_alerts().exists()


# --- Proximity and no-driving periods on the chart -------------------------------------------------------------


@pytest.mark.django_db
def test_cell_products_carry_the_2_week_periods_with_their_source():
    drug = Drug.objects.get(name="Axicabtagene ciloleucel")
    assert (drug.proximity_days, drug.no_driving_days) == (14, 14)
    assert "REMS removed" in drug.periods_source
    assert drug.periods_effective_from == date(2025, 6, 26)
    assert not Drug.objects.filter(cell_therapy=False, proximity_days__isnull=False).exists()


def _given(course, infused_at: datetime) -> None:
    """Test setup: the infusion given at `infused_at` (the bedside flow is tested in test_bedside)."""
    dose = first_dose(course)
    Dose.objects.filter(pk=dose.pk).update(planned_at=infused_at - timedelta(minutes=30), status=DoseStatus.GIVEN)
    Preparation.objects.filter(dose=dose).update(status="administered", administration_started_at=infused_at)


def _chart(client, user, patient) -> str:
    client.force_login(user)
    response = client.get(f"/patients/{patient.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_chart_shows_both_end_dates_after_the_infusion(client, oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, CAR_T, in_hours=1, chain_of_identity="COI-2026-000557")
    infused_at = timezone.now() - timedelta(days=3)
    _given(course, infused_at)
    html = _chart(client, oncologist_a, patient_a)
    end = timezone.localtime(infused_at + timedelta(days=14)).date().isoformat()
    assert 'data-testid="cell-therapy-periods"' in html
    assert f'stay within proximity of the treatment centre until <strong data-testid="proximity-until">{end}' in html
    assert f'no driving or hazardous activities until <strong data-testid="no-driving-until">{end}' in html
    assert "infused" in html
    assert "REMS removed" in html  # the source


@pytest.mark.django_db
def test_chart_shows_the_planned_dates_before_the_infusion(client, oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, CAR_T, in_hours=20, chain_of_identity="COI-2026-000558")
    html = _chart(client, oncologist_a, patient_a)
    end = timezone.localtime(first_dose(course).planned_at + timedelta(days=14)).date().isoformat()
    assert "infusion planned" in html
    assert f'data-testid="proximity-until">{end}' in html


@pytest.mark.django_db
def test_chart_drops_the_box_once_both_periods_are_over(client, oncologist_a, patient_a):
    course = start_course(patient_a, oncologist_a, CAR_T, in_hours=1, chain_of_identity="COI-2026-000559")
    _given(course, timezone.now() - timedelta(days=15))
    assert 'data-testid="cell-therapy-periods"' not in _chart(client, oncologist_a, patient_a)


@pytest.mark.django_db
def test_chart_of_a_checkpoint_inhibitor_patient_shows_no_periods(client, oncologist_a, patient_a):
    start_course(patient_a, oncologist_a, PEMBRO)
    html = _chart(client, oncologist_a, patient_a)
    assert 'data-testid="cell-therapy-periods"' not in html
    assert "proximity" not in html
