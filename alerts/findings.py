"""Pure rules that decide what one alert says, when a repeat is news and when a held alert is shown
(docs/architecture.md §3). No database: mutation-tested (docs/mutation-testing.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from alerts.choices import AlertAudience, AlertSeverity
from patients.choices import CareTeamRole

SUMMARY_MAX = 200

# Who each audience is: the care-team roles that receive it. The laboratory is no team role (lab staff serve
# every patient). Escalation rungs use the other roles, so a rung always reaches someone who did not have it.
AUDIENCE_ROLES: dict[AlertAudience, frozenset[CareTeamRole]] = {
    AlertAudience.CARE_TEAM: frozenset({CareTeamRole.NURSE, CareTeamRole.ONCOLOGIST}),
    AlertAudience.NURSES: frozenset({CareTeamRole.NURSE}),
    AlertAudience.ONCOLOGISTS: frozenset({CareTeamRole.ONCOLOGIST}),
    AlertAudience.LAB: frozenset(),
}


@dataclass(frozen=True)
class Finding:
    """One interpretation of a verified result (a critical value, a CTCAE grade, a hold rule) for one alert.

    `key` names what repeats: the same key at the same or a lower grade is a repeat, not news."""

    key: str
    label: str
    severity: AlertSeverity
    audience: AlertAudience
    grade: int = 0
    critical: bool = False
    subject_id: int | None = None

    def as_json(self, at: datetime) -> dict[str, Any]:
        stamp = at.isoformat()
        return {
            "key": self.key,
            "label": self.label,
            "severity": int(self.severity),
            "audience": self.audience.value,
            "grade": self.grade,
            "critical": self.critical,
            "count": 1,
            "subjects": [] if self.subject_id is None else [self.subject_id],
            "first_at": stamp,
            "last_at": stamp,
        }


def is_worse(new: Finding, old: dict[str, Any]) -> bool:
    """A higher grade, a critical value where there was none, or a more severe interpretation is news."""
    return new.grade > old["grade"] or (new.critical and not old["critical"]) or int(new.severity) > old["severity"]


@dataclass(frozen=True)
class Fold:
    findings: list[dict[str, Any]]
    worsened: tuple[str, ...]  # keys that are new to the alert or worse than before
    returned: tuple[str, ...] = ()  # keys back after more than the window without them: news again


def fold_findings(
    existing: Sequence[dict[str, Any]], new: Iterable[Finding], at: datetime, window: timedelta | None = None
) -> Fold:
    """Merge new findings into an alert's: a repeat updates the latest value and its count and keeps the
    worst grade seen; a new key or a worse one is news, and so is one last seen more than `window` ago."""
    merged = {f["key"]: dict(f) for f in existing}
    worsened: list[str] = []
    returned: list[str] = []
    for finding in new:
        old = merged.get(finding.key)
        if old is None:
            merged[finding.key] = finding.as_json(at)
            worsened.append(finding.key)
            continue
        if is_worse(finding, old):
            worsened.append(finding.key)
        elif window is not None and datetime.fromisoformat(old["last_at"]) < at - window:
            returned.append(finding.key)
        old["label"] = finding.label
        old["grade"] = max(old["grade"], finding.grade)
        old["critical"] = old["critical"] or finding.critical
        old["severity"] = max(old["severity"], int(finding.severity))
        old["audience"] = widest_audience([AlertAudience(old["audience"]), finding.audience]).value
        old["count"] += 1
        old["last_at"] = at.isoformat()
        if finding.subject_id is not None and finding.subject_id not in old["subjects"]:
            old["subjects"] = [*old["subjects"], finding.subject_id]
    return Fold(findings=ranked(merged.values()), worsened=tuple(worsened), returned=tuple(returned))


def withdraw_findings(findings: Sequence[dict[str, Any]], subject_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The findings that still stand once these subjects no longer do (e.g. the lab retracted the results): a
    finding goes when every subject it rests on went; one resting on none (a hold rule) stays."""
    gone = set(subject_ids)
    standing = []
    for finding in findings:
        subjects = [s for s in finding["subjects"] if s not in gone]
        if finding["subjects"] and not subjects:
            continue
        standing.append({**finding, "subjects": subjects})
    return standing


def ranked(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Critical values first, then the most severe, then the highest grade; ties by key, for a stable text."""
    return sorted(findings, key=lambda f: (not f["critical"], -f["severity"], -f["grade"], f["key"]))


def widest_audience(audiences: Iterable[AlertAudience]) -> AlertAudience:
    """The audience that reaches everyone any of `audiences` reaches (the care team for nurses and oncologists)."""
    wanted = [a for a in dict.fromkeys(audiences)]
    if len(wanted) == 1:
        return wanted[0]
    roles = frozenset().union(*(AUDIENCE_ROLES[a] for a in wanted))
    for audience, members in AUDIENCE_ROLES.items():
        if members == roles and audience is not AlertAudience.LAB:
            return audience
    return AlertAudience.CARE_TEAM


def findings_severity(findings: Iterable[dict[str, Any]]) -> AlertSeverity:
    return AlertSeverity(max(f["severity"] for f in findings))


def findings_audience(findings: Iterable[dict[str, Any]]) -> AlertAudience:
    return widest_audience(AlertAudience(f["audience"]) for f in findings)


def findings_summary(findings: Sequence[dict[str, Any]]) -> str:
    """The findings' labels, most urgent first, cut to the summary's length with an ellipsis."""
    text = " · ".join(f["label"] if f["count"] == 1 else f"{f['label']} ({f['count']} times)" for f in findings)
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def quiet_hours_release(at: datetime, start: time, end: time, zone: tzinfo) -> datetime:
    """When an alert raised `at` may be shown under quiet hours [start, end) in `zone` (they may span
    midnight): `at` itself outside them, else the end of the quiet period."""
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return at
    if start < end:
        quiet = start <= clock < end
        day = local.date()
    else:
        quiet = clock >= start or clock < end
        day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not quiet:
        return at
    return datetime.combine(day, end, tzinfo=zone).astimezone(at.tzinfo)
