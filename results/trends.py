"""Chart data for a patient's lab trends: points, reference band and CTCAE grade bands."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from results import ctcae
from results.models import ResultSpec
from results.selectors import Trend

_STEPS = 400
# Trend charts reach this far ahead: the planned doses of the next two weeks.
TREND_AHEAD_DAYS = 14


def grade_bands(spec: ResultSpec, low: Decimal | None, high: Decimal | None, top: float) -> list[dict[str, Any]]:
    """Value intervals with the CTCAE grade each would get (graded, not redrawn by hand): one grid scan
    of `results.ctcae.grade` from 0 to `top`."""
    lln = float(low) if low is not None else None
    uln = float(high) if high is not None else None
    bands: list[dict[str, Any]] = []
    for i in range(_STEPS + 1):
        value = top * i / _STEPS
        term = (
            spec.ctcae_term_low if (lln is not None and value < lln and spec.ctcae_term_low) else spec.ctcae_term_high
        )
        term = term or spec.ctcae_term_low
        if not term:
            return []
        graded = ctcae.grade(term, Decimal(str(round(value, 6))), unit=spec.unit, lln=lln, uln=uln)
        grade = int(graded) if graded is not None else None
        if bands and bands[-1]["grade"] == grade:
            bands[-1]["to"] = value
        else:
            bands.append({"grade": grade, "from": value, "to": value})
    return [b for b in bands if b["grade"]]


def trend_chart_data(
    trends: list[Trend],
    dose_dates: list[str] | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Each analyte's chart over the window from `start` (None: its first result) to `end` (None: its last point
    or dose): its points, reference band, CTCAE grade bands and the doses inside the window."""
    inside = [
        d
        for d in dose_dates or []
        if (start is None or datetime.fromisoformat(d) >= start) and (end is None or datetime.fromisoformat(d) <= end)
    ]
    window = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
    specs = {s.lab_test_id: s for s in ResultSpec.objects.filter(lab_test__in=[t.lab_test for t in trends])}
    charts = []
    for trend in trends:
        values = [float(p.value) for p in trend.points]
        top = max([*values, float(trend.reference_high or 0) * 1.5, 1.0])
        spec = specs.get(trend.lab_test.pk)
        charts.append(
            {
                "id": trend.lab_test.pk,
                "name": trend.lab_test.name,
                "unit": trend.unit,
                "points": [
                    # A censored point ("<5") sits at its bound; "comparator" tells the chart to mark it as such.
                    {
                        "x": p.at.isoformat(),
                        "y": float(p.value),
                        "flag": p.flag,
                        "grade": p.grade,
                        "comparator": p.comparator,
                    }
                    for p in trend.points
                ],
                "reference": {
                    "low": float(trend.reference_low) if trend.reference_low is not None else None,
                    "high": float(trend.reference_high) if trend.reference_high is not None else None,
                },
                "grade_bands": grade_bands(spec, trend.reference_low, trend.reference_high, top) if spec else [],
                "doses": inside,
                "window": window,
            }
        )
    return charts
