"""T-VEC injection volume by lesion size (IMLYGIC US PI §2.2), at every boundary of the table, and the visit cap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.lesions import LesionError, injection_plan, virus_dose, volume_for_lesion

D = Decimal


@pytest.mark.parametrize(
    ("size_cm", "volume_ml"),
    [
        ("50", "4"), ("5.01", "4"),  # > 5 cm: up to 4 mL
        ("5", "2"), ("2.51", "2"),  # > 2.5 to 5 cm: up to 2 mL
        ("2.5", "1"), ("1.51", "1"),  # > 1.5 to 2.5 cm: up to 1 mL
        ("1.5", "0.5"), ("0.51", "0.5"),  # > 0.5 to 1.5 cm: up to 0.5 mL
        ("0.5", "0.1"), ("0.01", "0.1"),  # ≤ 0.5 cm: up to 0.1 mL
    ],
)  # fmt: skip
def test_volume_by_lesion_size_at_each_boundary(size_cm, volume_ml):
    assert volume_for_lesion(D(size_cm)) == D(volume_ml)


def test_lesions_are_injected_largest_first():
    plan = injection_plan([D("0.4"), D("3"), D("1")])
    assert [(r.index, r.volume_ml) for r in plan.rows] == [(1, D(2)), (2, D("0.5")), (0, D("0.1"))]
    assert plan.total_ml == D("2.6")
    assert plan.deferred == ()


def test_visit_is_capped_at_4_ml_and_the_rest_waits():
    plan = injection_plan([D(6), D(3), D("0.3")])
    assert [r.volume_ml for r in plan.rows] == [D(4), D(0), D(0)]
    assert plan.total_ml == D(4)
    assert [r.index for r in plan.deferred] == [1, 2]


def test_four_lesions_of_2_cm_fill_exactly_4_ml():
    plan = injection_plan([D(2)] * 5)
    assert [r.volume_ml for r in plan.rows] == [D(1), D(1), D(1), D(1), D(0)]
    assert plan.total_ml == D(4)


def test_a_lesion_that_no_longer_fits_whole_gets_what_is_left():
    plan = injection_plan([D(3), D(3)], max_total_ml=D(3))
    assert [r.volume_ml for r in plan.rows] == [D(2), D(1)]


def test_equal_sizes_keep_the_order_given():
    plan = injection_plan([D(1), D(1)])
    assert [r.index for r in plan.rows] == [0, 1]


@pytest.mark.parametrize("sizes", [[], [D(0)], [D(-1)], ["abc"], [D(51)], [True], [D("NaN")]])
def test_impossible_lesions_are_refused(sizes):
    with pytest.raises(LesionError):
        injection_plan(sizes)


def test_record_names_each_lesion():
    assert injection_plan([D("0.4"), D(6)]).as_record() == [
        {"lesion": "2", "size_cm": "6", "volume_ml": "4"},
        {"lesion": "1", "size_cm": "0.4", "volume_ml": "0"},
    ]


def test_first_dose_is_10_6_then_10_8_pfu_per_ml():
    first = virus_dose(dose_number=1, pfu_per_ml_first_dose=10**6, pfu_per_ml=10**8, max_volume_ml=D(4))
    later = virus_dose(dose_number=2, pfu_per_ml_first_dose=10**6, pfu_per_ml=10**8, max_volume_ml=D(4))
    assert (first.concentration_pfu_per_ml, later.concentration_pfu_per_ml) == (10**6, 10**8)
    assert "10⁶ PFU/mL" in first.note


def test_no_concentration_fails_closed():
    with pytest.raises(LesionError) as error:
        virus_dose(dose_number=2, pfu_per_ml_first_dose=10**6, pfu_per_ml=None, max_volume_ml=D(4))
    assert error.value.field == "pfu_per_ml"
