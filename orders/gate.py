"""The dose gate (docs/architecture.md "The dose gate"): is dose N cleared for preparation?

It reads the regimen's pre-dose labs, the hold rules (versioned data with an action), the regimen's dose limits
and the oncologists' decisions, and fails closed: what it cannot decide is *pending*, never *cleared*.
Reads only; the writes that rely on a verdict (decisions, gate checks, alerts) live in orders.services.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.db.models import IntegerField, Min, Q, Value

from core.numbers import plain_decimal
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from orders.choices import Comparator, DecisionKind, GateVerdict, HoldAction, Reference
from orders.models import (
    CourseMonitoringTest,
    Dose,
    DoseDecision,
    HoldRule,
    RegimenDoseBand,
)
from results.choices import VERIFIED
from results.models import Result
from results.units import UnitError, convert, normalise


class FindingKind(StrEnum):
    PENDING = "pending"  # cannot be decided yet: one oncologist may override with a reason
    WITHHOLD = "withhold"  # one oncologist may override with a reason
    DISCONTINUE = "discontinue"  # two oncologists, or stop the course
    LIMIT = "limit"  # a dose limit of the regimen: no override


@dataclass(frozen=True)
class Finding:
    """One reason the gate holds a dose. `key` names exactly this finding (rule version and result), so a
    decision covers what it saw and a new finding holds the dose again."""

    key: str
    kind: FindingKind
    text: str
    hold_rule_id: int | None = None
    subject: str = ""  # the lab test it waits for, if any (a list row names the tests, not every rule)


@dataclass
class Gate:
    verdict: GateVerdict
    findings: list[Finding] = field(default_factory=list)
    open_findings: list[Finding] = field(default_factory=list)  # not covered by a decision
    hold_rule_ids: list[int] = field(default_factory=list)  # the rule versions that were evaluated
    decisions: list[DoseDecision] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why the dose is held (or was, for a decided one): every finding but the pending ones."""
        decided = [f"{DECIDED[d.kind]} by {_names(d)}: {d.reason}" for d in self.decisions if self._used(d)]
        held = [f.text for f in self.findings if f.kind is not FindingKind.PENDING]
        return decided + held

    @property
    def pending(self) -> list[str]:
        return [f.text for f in self.findings if f.kind is FindingKind.PENDING]

    @property
    def pending_summary(self) -> list[str]:
        """The pending findings as a list row shows them (the course page lists each): one line per kind of
        wait naming its tests, any other pending finding in full."""
        folded: dict[str, list[str]] = {}
        unfolded = []
        for finding in self.findings:
            if finding.kind is not FindingKind.PENDING:
                continue
            heading = next((h for end, h in PENDING_FOLDS if finding.key.endswith(end) and finding.subject), None)
            if heading is None:
                unfolded.append(finding.text)
            elif finding.subject not in folded.setdefault(heading, []):
                folded[heading].append(finding.subject)
        return [f"{heading}: {', '.join(names)}" for heading, names in folded.items()] + unfolded

    @property
    def is_open(self) -> bool:
        return self.verdict in (GateVerdict.CLEARED, GateVerdict.OVERRIDDEN, GateVerdict.COSIGNED)

    def _used(self, decision: DoseDecision) -> bool:
        return bool(set(decision.covers) & {f.key for f in self.findings})


# Pending findings a list row folds into one line each, by the end of their key.
PENDING_FOLDS = (
    (":not-collected", "Not collected yet"),
    (":outside-window", "Collected before the pre-dose window"),
    (":result-pending", "Collected, verified result pending"),
    (":no-result", "No verified result yet for the hold rules on"),
)
DECIDED = {DecisionKind.OVERRIDE.value: "Overridden", DecisionKind.COSIGNED.value: "Continued"}


def _names(decision: DoseDecision) -> str:
    return f"{decision.by} and {decision.cosigned_by}" if decision.cosigned_by_id else str(decision.by)


def verdict_for(findings: Sequence[Finding], decisions: Sequence[DoseDecision]) -> tuple[GateVerdict, list[Finding]]:
    """The verdict from the findings and the decisions that cover them (pure)."""
    covered = {key for decision in decisions for key in decision.covers}
    remaining = [f for f in findings if f.key not in covered]
    kinds = {f.kind for f in remaining}
    for kind, verdict in (
        (FindingKind.LIMIT, GateVerdict.BLOCKED),
        (FindingKind.DISCONTINUE, GateVerdict.DISCONTINUED),
        (FindingKind.WITHHOLD, GateVerdict.WITHHELD),
        (FindingKind.PENDING, GateVerdict.PENDING),
    ):
        if kind in kinds:
            return verdict, remaining
    if not findings:
        return GateVerdict.CLEARED, []
    cosigned = any(d.kind == DecisionKind.COSIGNED and set(d.covers) & {f.key for f in findings} for d in decisions)
    return (GateVerdict.COSIGNED if cosigned else GateVerdict.OVERRIDDEN), []


# --- Hold rules ----------------------------------------------------------------------------------------------


def _ratio_text(ratio: Decimal, threshold: Decimal) -> str:
    """A broken rule's ratio to one decimal, or two when one decimal would not show it beyond the threshold
    (3.04 > 3 is not "3.0")."""
    one = ratio.quantize(Decimal("0.1"), ROUND_HALF_UP)
    if one <= threshold:
        return format(ratio.quantize(Decimal("0.01"), ROUND_HALF_UP), "f")
    return format(one, "f")


TIMES = "\N{MULTIPLICATION SIGN}"
REFERENCE_NAMES = {Reference.ULN: "ULN", Reference.LLN: "LLN", Reference.BASELINE: "baseline"}


def evaluate_hold_rule(rule: HoldRule, result: Result | None, baseline: Result | None) -> Finding | None:
    """One rule against the latest verified result (and the patient's baseline, for x baseline rules).

    None when the rule is not broken (or does not apply); a PENDING finding when it cannot be decided.
    """
    action = HoldAction(rule.action)
    label = f"{rule.description} (v{rule.version})"
    base_key = f"hold:{rule.key}:v{rule.version}"

    def pending(why: str, suffix: str) -> Finding:
        return Finding(f"{base_key}:{suffix}", FindingKind.PENDING, f"{why}: cannot decide {label}", rule.pk, name)

    name = rule.lab_test.name
    if result is None:
        if not rule.requires_result:
            return None
        return pending(f"No verified {name} result in the {rule.lookback_days} days before the dose", "no-result")
    if result.value_numeric is None:
        return pending(f"{name} result {result.display_value!r} is not a number", f"text:{result.pk}")
    value = result.value_numeric
    if rule.reference == Reference.ABSOLUTE:
        try:
            compared = convert(value, result.unit, rule.unit, loinc=result.lab_test.loinc_code)
        except UnitError:
            unit = result.unit or "no unit"
            return pending(f"{name} in {unit!r} cannot be converted to {rule.unit!r}", f"unit:{result.pk}")
        broken = compared > rule.threshold if rule.comparator == Comparator.GREATER else compared < rule.threshold
        if not broken:  # most results on a worklist page: no text to build
            return None
        shown = f"{name} {result.display_value}"
        if normalise(result.unit) != normalise(rule.unit):
            shown += f" (= {plain_decimal(compared.quantize(Decimal('0.01')))} {rule.unit})"
        limit_text = f"{plain_decimal(rule.threshold)} {rule.unit}"
        text = f"{shown} {Comparator(rule.comparator).label} {limit_text}"
    else:
        if rule.reference == Reference.BASELINE:
            if baseline is None or baseline.value_numeric is None:
                return pending(f"No baseline {name} result before the first dose", "no-baseline")
            try:
                base = convert(baseline.value_numeric, baseline.unit, result.unit, loinc=result.lab_test.loinc_code)
            except UnitError:
                return pending(f"Baseline {name} unit cannot be converted", f"unit:{baseline.pk}")
        else:
            limit = result.reference_high if rule.reference == Reference.ULN else result.reference_low
            if limit is None:
                return pending(f"{name} result has no reference range ({REFERENCE_NAMES[Reference(rule.reference)]})",
                               f"no-range:{result.pk}")  # fmt: skip
            base = limit
        if base <= 0:
            return pending(f"{name} reference value {base} cannot scale a threshold", f"zero-base:{result.pk}")
        ratio = value / base
        broken = ratio > rule.threshold if rule.comparator == Comparator.GREATER else ratio < rule.threshold
        if not broken:
            return None
        ref = REFERENCE_NAMES[Reference(rule.reference)]
        symbol = Comparator(rule.comparator).label
        ratio_text = _ratio_text(ratio, rule.threshold)
        limit_text = f"{plain_decimal(rule.threshold)} {TIMES} {ref}"
        text = f"{name} {result.display_value} = {ratio_text} {TIMES} {ref} {symbol} {limit_text}"
    kind = FindingKind.DISCONTINUE if action == HoldAction.DISCONTINUE else FindingKind.WITHHOLD
    reason = f"{text}: {action.label.lower()}{_source(rule.source)}"
    return Finding(f"{base_key}:result:{result.pk}", kind, reason, rule.pk)


def rule_applies(rule: HoldRule, drug_id: int, regimen_id: int) -> bool:
    """A rule names the drugs or regimens it applies to, or none (every drug). `rule` comes from
    `current_hold_rules`, which attaches the ids it names."""
    drugs: list[int] = rule.drug_ids  # type: ignore[attr-defined]
    regimens: list[int] = rule.regimen_ids  # type: ignore[attr-defined]
    if not drugs and not regimens:
        return True
    return drug_id in drugs or regimen_id in regimens


def current_hold_rules() -> list[HoldRule]:
    """The rules in force, each with the ids of the drugs and regimens it names (one query, no catalogue record
    per link)."""
    linked = {"default": Value([], output_field=ArrayField(IntegerField()))}
    return list(
        HoldRule.objects.filter(active=True, superseded_by__isnull=True)
        .select_related("lab_test")
        .annotate(
            drug_ids=ArrayAgg("drugs__id", distinct=True, filter=Q(drugs__isnull=False), **linked),
            regimen_ids=ArrayAgg("regimens__id", distinct=True, filter=Q(regimens__isnull=False), **linked),
        )
        .order_by("pk")
    )


# --- Dose limits ---------------------------------------------------------------------------------------------


def band_for(bands: Iterable[RegimenDoseBand], weight_kg: Decimal) -> RegimenDoseBand | None:
    """The weight band that holds `weight_kg` (from ≤ weight < below), or None."""
    for band in bands:
        if (band.weight_from_kg is None or weight_kg >= band.weight_from_kg) and (
            band.weight_below_kg is None or weight_kg < band.weight_below_kg
        ):
            return band
    return None


def band_problem(bands: Sequence[RegimenDoseBand], weight_kg: Decimal, regimen_name: str) -> str | None:
    """Why the regimen cannot be given at this weight (no band holds it, or its band refuses), else None."""
    if not bands:
        return None
    band = band_for(bands, weight_kg)
    if band is None:
        return f"{regimen_name} has no dose for a patient of {plain_decimal(weight_kg)} kg."
    if band.refuse:
        return band.note or f"{regimen_name} is not given at {plain_decimal(weight_kg)} kg."
    return None


def _limit_findings(dose: Dose, first_dose_at: datetime | None, bands: Sequence[RegimenDoseBand]) -> list[Finding]:
    regimen, patient = dose.course.regimen, dose.course.patient
    findings = []
    window = regimen.course_window_days
    if window and first_dose_at is not None and dose.number > 1:
        last = first_dose_at + timedelta(days=window)
        if dose.planned_at > last:
            findings.append(
                Finding(
                    f"limit:course-window:{dose.pk}",
                    FindingKind.LIMIT,
                    f"Dose {dose.number} on {dose.planned_at:%Y-%m-%d} is beyond the {window}-day course window "
                    f"(first dose {first_dose_at:%Y-%m-%d}; every dose by {last:%Y-%m-%d}){_source(regimen.source)}",
                )
            )
    problem = band_problem(bands, patient.weight_kg, regimen.name)
    if problem:
        findings.append(Finding(f"limit:weight-band:{patient.weight_kg}", FindingKind.LIMIT, problem))
    return findings


def _source(source: str) -> str:
    return f" ({source})" if source else ""


# --- Pre-dose labs -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreDoseLab:
    """What the gate reads of one pre-dose lab of a dose: plain values, not three model instances per link
    (a worklist page reads hundreds; docs/architecture.md §6)."""

    test_id: int
    status: str
    collected_at: datetime | None
    due_at: datetime
    lab_test_name: str
    window_hours: int


def _pre_dose_labs(dose_ids: Sequence[int]) -> dict[int, list[PreDoseLab]]:
    # Links first, then their tests by primary key: as one join the planner hashes the whole test table
    # (it underestimates the links of a page's doses), several ms at 40k tests and growing with the table.
    links = list(
        CourseMonitoringTest.objects.filter(dose_id__in=dose_ids, rule__gates_dose=True)
        .values_list("dose_id", "monitoring_test_id", "rule__window_hours")
        .order_by("pk")
    )
    tests = {
        row[0]: row[1:]
        for row in MonitoringTest.objects.filter(pk__in=[link[1] for link in links]).values_list(
            "pk", "status", "collected_at", "due_at", "lab_test__name"
        )
    }
    labs: dict[int, list[PreDoseLab]] = defaultdict(list)
    for dose_id, test_id, window_hours in links:
        status, collected_at, due_at, name = tests[test_id]
        labs[dose_id].append(PreDoseLab(test_id, status, collected_at, due_at, name, window_hours))
    return labs


def _lab_findings(dose: Dose, labs: Sequence[PreDoseLab]) -> list[Finding]:
    findings = []
    for lab in labs:
        if lab.status in (MonitoringTestStatus.CANCELLED, MonitoringTestStatus.RECOLLECT):
            continue
        name = lab.lab_test_name
        window_start = dose.planned_at - timedelta(hours=lab.window_hours)
        key = f"lab:{lab.test_id}"
        if lab.collected_at is None:
            text = f"{name} not collected yet (due {lab.due_at:%Y-%m-%d %H:%M})"
            findings.append(Finding(f"{key}:not-collected", FindingKind.PENDING, text, subject=name))
        elif lab.collected_at < window_start:
            when = f"{lab.collected_at:%Y-%m-%d %H:%M}"
            text = f"{name} collected {when}, before the {lab.window_hours} h window"
            findings.append(Finding(f"{key}:outside-window", FindingKind.PENDING, text, subject=name))
        elif lab.status != MonitoringTestStatus.SATISFIED:
            text = f"{name} collected, verified result pending"
            findings.append(Finding(f"{key}:result-pending", FindingKind.PENDING, text, subject=name))
    return findings


# --- All together --------------------------------------------------------------------------------------------

# What a hold rule reads of a result (`evaluate_hold_rule`, `Result.display_value`).
RULE_RESULT_FIELDS = (
    "patient_id", "lab_test_id", "value_numeric", "value_text", "value_comparator", "decimal_places", "unit",
    "observed_at", "reference_low", "reference_high",
)  # fmt: skip


def dose_gates(doses: Sequence[Dose], *, now: datetime) -> dict[int, Gate]:
    """The gate of many doses in a constant number of queries (worklists). Doses need
    `course__patient` and `course__regimen` loaded (the selectors do)."""
    if not doses:
        return {}
    dose_ids = [d.pk for d in doses]
    labs_by_dose = _pre_dose_labs(dose_ids)
    decisions_by_dose: dict[int, list[DoseDecision]] = defaultdict(list)
    for decision in DoseDecision.objects.filter(dose_id__in=dose_ids).select_related("by", "cosigned_by"):
        decisions_by_dose[decision.dose_id].append(decision)
    course_ids = {d.course_id for d in doses}
    first_dose_at = first_dose_times(course_ids)
    regimen_ids = {d.course.regimen_id for d in doses}
    bands_by_regimen: dict[int, list[RegimenDoseBand]] = defaultdict(list)
    for band in RegimenDoseBand.objects.filter(regimen_id__in=regimen_ids).order_by("weight_from_kg"):
        bands_by_regimen[band.regimen_id].append(band)

    rules = current_hold_rules()
    rule_tests = {rule.lab_test_id: rule.lab_test for rule in rules}
    ends = {d.pk: max(now, d.planned_at) for d in doses}
    lookback = max((r.lookback_days for r in rules), default=0)
    earliest = min(ends.values()) - timedelta(days=lookback)
    patient_ids = {d.course.patient_id for d in doses}
    latest: dict[tuple[int, int], Result] = {}
    recent = (
        Result.objects.filter(
            patient_id__in=patient_ids,
            lab_test_id__in={r.lab_test_id for r in rules},
            status__in=VERIFIED,
            is_current=True,
            observed_at__gte=earliest,
            observed_at__lte=max(ends.values()),
        )
        .order_by("patient_id", "lab_test_id", "-observed_at", "-id")
        .distinct("patient_id", "lab_test_id")  # the latest of each
        .only(*RULE_RESULT_FIELDS)
    )
    for result in recent:
        result.lab_test = rule_tests[result.lab_test_id]  # the rules' own lab tests, not one copy per result
        latest[(result.patient_id, result.lab_test_id)] = result
    baselines = _baselines(doses, rules, first_dose_at)

    gates = {}
    applying: dict[int, list[HoldRule]] = {}  # by regimen: a page has a few regimens and hundreds of doses
    for dose in doses:
        course = dose.course
        findings = _lab_findings(dose, labs_by_dose[dose.pk])
        evaluated = []
        if course.regimen_id not in applying:
            drug_id = course.regimen.drug_id
            applying[course.regimen_id] = [r for r in rules if rule_applies(r, drug_id, course.regimen_id)]
        for rule in applying[course.regimen_id]:
            evaluated.append(rule.pk)
            found = latest.get((course.patient_id, rule.lab_test_id))
            window_start = ends[dose.pk] - timedelta(days=rule.lookback_days)
            in_window = found if found is not None and window_start <= found.observed_at <= ends[dose.pk] else None
            finding = evaluate_hold_rule(rule, in_window, baselines.get((course.pk, rule.lab_test_id)))
            if finding is not None:
                findings.append(finding)
        findings += _limit_findings(dose, first_dose_at.get(course.pk), bands_by_regimen[course.regimen_id])
        decisions = decisions_by_dose[dose.pk]
        verdict, remaining = verdict_for(findings, decisions)
        gates[dose.pk] = Gate(verdict, findings, remaining, evaluated, decisions)
    return gates


def first_dose_times(course_ids: set[int]) -> dict[int, datetime]:
    """When each course's first dose was (or is) given: its administration start, else its planned time."""
    first = (
        Dose.objects.filter(course_id__in=course_ids, number=1)
        .values_list("course_id", "planned_at")
        .annotate(started=Min("preparations__administration_started_at"))
    )
    return {course_id: started or planned_at for course_id, planned_at, started in first}


def _baselines(
    doses: Sequence[Dose], rules: Sequence[HoldRule], first_dose_at: dict[int, datetime]
) -> dict[tuple[int, int], Result]:
    """(course, lab test) -> the latest verified result at or before the first dose, for x baseline rules."""
    test_ids = {r.lab_test_id for r in rules if r.reference == Reference.BASELINE}
    if not test_ids:
        return {}
    courses_by_patient: dict[int, list[int]] = defaultdict(list)
    for dose in doses:
        if dose.course_id not in courses_by_patient[dose.course.patient_id]:
            courses_by_patient[dose.course.patient_id].append(dose.course_id)
    found: dict[tuple[int, int], Result] = {}
    rows = (
        Result.objects.filter(
            patient_id__in=set(courses_by_patient), lab_test_id__in=test_ids, status__in=VERIFIED, is_current=True
        )
        .order_by("-observed_at", "-id")
        .only(*RULE_RESULT_FIELDS)
    )
    rule_tests = {rule.lab_test_id: rule.lab_test for rule in rules}
    for result in rows:
        result.lab_test = rule_tests[result.lab_test_id]
        for course_id in courses_by_patient[result.patient_id]:
            first = first_dose_at.get(course_id)
            if first is not None and result.observed_at <= first:
                found.setdefault((course_id, result.lab_test_id), result)
    return found


def dose_gate(dose: Dose, *, now: datetime) -> Gate:
    """Cleared, pending, withheld, discontinued, blocked, overridden or co-signed, with the findings."""
    return dose_gates([dose], now=now)[dose.pk]
