"""The pure rules of one alert per finding (alerts/findings.py): no database, mutation-tested."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.choices import AlertAudience, AlertSeverity
from alerts.findings import (
    SUMMARY_MAX,
    Finding,
    findings_audience,
    findings_severity,
    findings_summary,
    fold_findings,
    is_worse,
    quiet_hours_release,
    ranked,
    widest_audience,
    withdraw_findings,
)

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LATER = AT + timedelta(hours=5)


def tox(key: str = "lab:1", grade: int = 3, label: str = "ALT 336 U/L", subject: int | None = 11) -> Finding:
    severity = AlertSeverity.CRITICAL if grade >= 4 else AlertSeverity.HIGH
    return Finding(key, label, severity, AlertAudience.ONCOLOGISTS, grade=grade, subject_id=subject)


def crit(key: str = "lab:2", grade: int = 0, label: str = "Critical: K 6.9", subject: int | None = 12) -> Finding:
    return Finding(
        key, label, AlertSeverity.CRITICAL, AlertAudience.CARE_TEAM, grade, critical=True, subject_id=subject
    )


def test_as_json_records_everything_the_fold_needs():
    assert tox().as_json(AT) == {
        "key": "lab:1", "label": "ALT 336 U/L", "severity": 3, "audience": "oncologists", "grade": 3,
        "critical": False, "count": 1, "subjects": [11], "first_at": AT.isoformat(), "last_at": AT.isoformat(),
    }  # fmt: skip
    assert Finding("dose:1:rule:2", "rule", AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS).as_json(AT)["subjects"] == []


@pytest.mark.parametrize(
    ("new", "worse"),
    [
        (tox(grade=3), False),
        (tox(grade=2), False),
        (tox(grade=4), True),
        (Finding("lab:1", "x", AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS, grade=4), True),  # by grade alone
        (crit(key="lab:1", grade=3), True),  # a critical value where there was none
        (Finding("lab:1", "x", AlertSeverity.CRITICAL, AlertAudience.ONCOLOGISTS, grade=3), True),  # more severe
        (Finding("lab:1", "x", AlertSeverity.MODERATE, AlertAudience.ONCOLOGISTS, grade=3), False),
    ],
)
def test_is_worse(new, worse):
    assert is_worse(new, tox(grade=3).as_json(AT)) is worse


def test_a_critical_repeat_of_a_critical_finding_is_not_worse():
    assert is_worse(crit(), crit().as_json(AT)) is False


def test_fold_into_nothing_makes_every_finding_news():
    fold = fold_findings([], [tox(), crit()], AT)
    assert fold.worsened == ("lab:1", "lab:2")
    assert [f["key"] for f in fold.findings] == ["lab:2", "lab:1"]  # the critical value first


def test_a_repeat_keeps_the_worst_grade_updates_the_latest_value_and_counts():
    existing = fold_findings([], [tox(grade=3, subject=11)], AT).findings
    fold = fold_findings(existing, [tox(grade=2, label="ALT 150 U/L", subject=15)], LATER)
    assert fold.worsened == ()
    (merged,) = fold.findings
    assert merged["label"] == "ALT 150 U/L"
    assert merged["grade"] == 3
    assert merged["severity"] == AlertSeverity.HIGH
    assert merged["count"] == 2
    assert merged["subjects"] == [11, 15]
    assert (merged["first_at"], merged["last_at"]) == (AT.isoformat(), LATER.isoformat())
    assert existing[0]["count"] == 1  # the stored findings are not changed in place


def test_a_repeat_of_the_same_subject_is_not_listed_twice():
    existing = fold_findings([], [tox(subject=11)], AT).findings
    (merged,) = fold_findings(existing, [tox(subject=11)], LATER).findings
    assert merged["subjects"] == [11]


def test_a_worse_repeat_is_news_and_takes_the_worse_grade_severity_and_audience():
    existing = fold_findings([], [tox(grade=3)], AT).findings
    fold = fold_findings(existing, [crit(key="lab:1", grade=4, label="Critical: ALT 1200")], LATER)
    assert fold.worsened == ("lab:1",)
    (merged,) = fold.findings
    assert (merged["grade"], merged["critical"], merged["severity"]) == (4, True, AlertSeverity.CRITICAL)
    assert merged["audience"] == AlertAudience.CARE_TEAM


def test_critical_stays_once_seen():
    existing = fold_findings([], [crit(key="lab:1", grade=3)], AT).findings
    (merged,) = fold_findings(existing, [tox(grade=3)], LATER).findings
    assert merged["critical"] is True
    assert merged["severity"] == AlertSeverity.CRITICAL


def test_ranked_orders_critical_then_severity_then_grade_then_key():
    rows = [
        {"key": "b", "critical": False, "severity": 3, "grade": 3},
        {"key": "a", "critical": False, "severity": 3, "grade": 3},
        {"key": "c", "critical": False, "severity": 3, "grade": 4},
        {"key": "d", "critical": False, "severity": 4, "grade": 0},
        {"key": "e", "critical": True, "severity": 4, "grade": 0},
    ]
    assert [f["key"] for f in ranked(rows)] == ["e", "d", "c", "a", "b"]


@pytest.mark.parametrize(
    ("audiences", "widest"),
    [
        ([AlertAudience.ONCOLOGISTS], AlertAudience.ONCOLOGISTS),
        ([AlertAudience.LAB], AlertAudience.LAB),
        ([AlertAudience.ONCOLOGISTS, AlertAudience.ONCOLOGISTS], AlertAudience.ONCOLOGISTS),
        ([AlertAudience.NURSES, AlertAudience.ONCOLOGISTS], AlertAudience.CARE_TEAM),
        ([AlertAudience.CARE_TEAM, AlertAudience.NURSES], AlertAudience.CARE_TEAM),
        ([AlertAudience.LAB, AlertAudience.NURSES], AlertAudience.NURSES),
        ([AlertAudience.LAB, AlertAudience.ONCOLOGISTS], AlertAudience.ONCOLOGISTS),
    ],
)
def test_widest_audience(audiences, widest):
    assert widest_audience(audiences) is widest


def test_severity_audience_and_summary_of_findings():
    findings = fold_findings([], [tox(), crit()], AT).findings
    assert findings_severity(findings) is AlertSeverity.CRITICAL
    assert findings_audience(findings) is AlertAudience.CARE_TEAM
    assert findings_summary(findings) == "Critical: K 6.9 · ALT 336 U/L"
    twice = fold_findings(findings, [tox()], LATER).findings
    assert findings_summary(twice) == "Critical: K 6.9 · ALT 336 U/L (2 times)"


def test_a_long_summary_is_cut_with_an_ellipsis_at_the_limit():
    findings = fold_findings([], [tox(label="A" * 150), crit(label="B" * 150)], AT).findings
    text = findings_summary(findings)
    assert len(text) == SUMMARY_MAX
    assert text.endswith("…")
    assert text.startswith("B" * 150 + " · A")
    exact = fold_findings([], [tox(label="C" * SUMMARY_MAX)], AT).findings
    assert findings_summary(exact) == "C" * SUMMARY_MAX


def test_withdraw_drops_only_findings_whose_every_subject_went():
    findings = fold_findings([], [tox(subject=11), crit(subject=12)], AT).findings
    findings = fold_findings(findings, [tox(subject=13)], LATER).findings
    findings += [Finding("dose:1:rule:2", "rule", AlertSeverity.HIGH, AlertAudience.ONCOLOGISTS).as_json(AT)]
    standing = withdraw_findings(findings, [12, 11])
    assert [(f["key"], f["subjects"]) for f in standing] == [("lab:1", [13]), ("dose:1:rule:2", [])]
    assert withdraw_findings(findings, [11, 12, 13]) == [findings[-1]]
    assert findings[1]["subjects"] == [11, 13]  # the input is not changed


PARIS = ZoneInfo("Europe/Paris")


def local(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("at", "release"),
    [
        (local(21, 59), local(21, 59)),  # before
        (local(22, 0), local(6, 0, day=2)),  # the start is quiet
        (local(23, 30), local(6, 0, day=2)),
        (local(2, 0), local(6, 0)),  # after midnight: the same morning
        (local(5, 59), local(6, 0)),
        (local(6, 0), local(6, 0)),  # the end is not quiet
        (local(12, 0), local(12, 0)),
    ],
)
def test_quiet_hours_over_midnight(at, release):
    assert quiet_hours_release(at.astimezone(UTC), time(22), time(6), PARIS) == release


@pytest.mark.parametrize(
    ("at", "release"),
    [
        (local(12, 59), local(12, 59)),
        (local(13, 0), local(14, 0)),
        (local(13, 59), local(14, 0)),
        (local(14, 0), local(14, 0)),
    ],
)
def test_quiet_hours_within_a_day(at, release):
    assert quiet_hours_release(at, time(13), time(14), PARIS) == release


def test_quiet_hours_keep_the_callers_time_zone_and_empty_hours_hold_nothing():
    release = quiet_hours_release(local(23).astimezone(UTC), time(22), time(6), PARIS)
    assert release.tzinfo is UTC
    assert release == local(6, day=2)
    assert quiet_hours_release(local(3), time(3), time(3), PARIS) == local(3)


def test_a_finding_back_after_the_window_is_news_and_one_within_it_is_not():
    window = timedelta(hours=72)
    existing = fold_findings([], [tox(subject=11)], AT).findings
    assert fold_findings(existing, [tox()], AT + window, window).returned == ()
    back = fold_findings(existing, [tox()], AT + window + timedelta(seconds=1), window)
    assert (back.returned, back.worsened) == (("lab:1",), ())
    assert fold_findings(existing, [tox()], AT + timedelta(days=30)).returned == ()  # no window: never
    worse = fold_findings(existing, [tox(grade=4)], AT + timedelta(days=30), window)
    assert (worse.worsened, worse.returned) == (("lab:1",), ())  # worse is reported as worse


def test_the_window_counts_from_the_findings_own_last_sighting():
    window = timedelta(hours=72)
    findings = fold_findings([], [tox(key="lab:1"), tox(key="lab:2")], AT).findings
    findings = fold_findings(findings, [tox(key="lab:2")], AT + timedelta(hours=60), window).findings
    back = fold_findings(findings, [tox(key="lab:1"), tox(key="lab:2")], AT + timedelta(hours=100), window)
    assert back.returned == ("lab:1",)
