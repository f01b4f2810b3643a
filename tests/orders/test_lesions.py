"""T-VEC injection volume by lesion size (IMLYGIC US PI §2.2), at every boundary of the table, and the visit cap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.lesions import LesionError, format_pfu, injection_plan, virus_dose, volume_for_lesion

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


@pytest.mark.parametrize(
    ("count", "pfu"),
    [
        (10, "10¹"), (100, "10²"), (1000, "10³"), (10**4, "10⁴"), (10**5, "10⁵"), (10**6, "10⁶"), (10**7, "10⁷"),
        (10**8, "10⁸"), (10**9, "10⁹"), (10**10, "10¹⁰"),
        (1, "1"), (2, "2"), (20, "20"), (11, "11"), (1000001, "1000001"), (2000000, "2000000"),
    ],
)  # fmt: skip
def test_pfu_as_powers_of_ten(count, pfu):
    assert format_pfu(count) == pfu


def test_virus_dose_note_and_record():
    dose = virus_dose(dose_number=2, pfu_per_ml_first_dose=10**6, pfu_per_ml=10**8, max_volume_ml=D(4))
    assert dose.note == "dose 2: 10⁸ PFU/mL, up to 4 mL for all lesions (volume by lesion size)"
    assert dose.as_record() == {
        "dose_number": "2",
        "concentration_pfu_per_ml": "100000000",
        "max_volume_ml": "4",
        "note": "dose 2: 10⁸ PFU/mL, up to 4 mL for all lesions (volume by lesion size)",
    }
    first = virus_dose(dose_number=1, pfu_per_ml_first_dose=10**6, pfu_per_ml=None, max_volume_ml=D("0.5"))
    assert (first.dose_number, first.concentration_pfu_per_ml, first.max_volume_ml) == (1, 10**6, D("0.5"))


@pytest.mark.parametrize(
    ("dose_number", "first", "later", "volume", "field", "reason"),
    [
        (1, None, 10**8, D(4), "pfu_per_ml_first_dose", "the regimen gives no concentration (PFU/mL) for this dose"),
        (1, 0, 10**8, D(4), "pfu_per_ml_first_dose", "the regimen gives no concentration (PFU/mL) for this dose"),
        (1, True, 10**8, D(4), "pfu_per_ml_first_dose", "the regimen gives no concentration (PFU/mL) for this dose"),
        (2, 10**6, None, D(4), "pfu_per_ml", "the regimen gives no concentration (PFU/mL) for this dose"),
        (2, 10**6, -1, D(4), "pfu_per_ml", "the regimen gives no concentration (PFU/mL) for this dose"),
        (3, 10**6, 0, D(4), "pfu_per_ml", "the regimen gives no concentration (PFU/mL) for this dose"),
        (2, 10**6, 10**8, None, "max_volume_ml_per_visit", "the regimen gives no volume per visit"),
        (2, 10**6, 10**8, D(0), "max_volume_ml_per_visit", "the regimen gives no volume per visit"),
        (1, 10**6, None, D(-1), "max_volume_ml_per_visit", "the regimen gives no volume per visit"),
    ],
)
def test_virus_dose_fails_closed_naming_the_field(dose_number, first, later, volume, field, reason):
    with pytest.raises(LesionError) as error:
        virus_dose(dose_number=dose_number, pfu_per_ml_first_dose=first, pfu_per_ml=later, max_volume_ml=volume)
    assert (error.value.field, error.value.reason, error.value.args) == (field, reason, (field, reason))


def test_sizes_as_whole_numbers_and_text_are_read():
    assert volume_for_lesion(6) == D(4)  # type: ignore[arg-type]
    assert volume_for_lesion("2.6") == D(2)  # type: ignore[arg-type]
    plan = injection_plan([1, "0.3"])
    assert [(r.index, r.size_cm, r.volume_ml) for r in plan.rows] == [(0, D(1), D("0.5")), (1, D("0.3"), D("0.1"))]
    assert (plan.total_ml, plan.max_total_ml) == (D("0.6"), D(4))


@pytest.mark.parametrize(
    ("sizes", "field", "reason"),
    [
        ([], "lesions", "give the longest dimension (cm) of at least one lesion"),
        ("123", "lesions", "give the longest dimension (cm) of at least one lesion"),
        (b"12", "lesions", "give the longest dimension (cm) of at least one lesion"),
        ([D(1)] * 51, "lesions", "at most 50 lesions a visit"),
        ([D(1), "abc"], "lesions[1]", "not a size in cm: 'abc'"),
        ([D(1), D(2), 1.5], "lesions[2]", "not a size in cm: 1.5"),
        ([True], "lesions[0]", "not a size in cm: True"),
        ([None], "lesions[0]", "not a size in cm: None"),
        ([D(0)], "lesions[0]", "a lesion's longest dimension is more than 0 cm (got 0)"),
        ([D("-0.1")], "lesions[0]", "a lesion's longest dimension is more than 0 cm (got -0.1)"),
        ([D("NaN")], "lesions[0]", "a lesion's longest dimension is more than 0 cm (got NaN)"),
        (["Infinity"], "lesions[0]", "a lesion's longest dimension is more than 0 cm (got Infinity)"),
        ([D("50.01")], "lesions[0]", "50.01 cm is more than 50 cm: give the size in cm"),
        ([120], "lesions[0]", "120 cm is more than 50 cm: give the size in cm"),
    ],
)
def test_impossible_lesions_are_refused_naming_the_field(sizes, field, reason):
    with pytest.raises(LesionError) as error:
        injection_plan(sizes)
    assert (error.value.field, error.value.reason, error.value.args) == (field, reason, (field, reason))


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        (D(0), "a lesion's longest dimension is more than 0 cm (got 0)"),
        (D(51), "51 cm is more than 50 cm: give the size in cm"),
        ("x", "not a size in cm: 'x'"),
    ],
)
def test_volume_for_one_lesion_is_refused_naming_size_cm(size, reason):
    with pytest.raises(LesionError) as error:
        volume_for_lesion(size)
    assert (error.value.field, error.value.reason) == ("size_cm", reason)


@pytest.mark.parametrize(
    ("max_total", "shown"),
    [(D(0), "Decimal('0')"), (D(-4), "Decimal('-4')"), (D("NaN"), "Decimal('NaN')"), (D("Infinity"),
     "Decimal('Infinity')"), (4, "4"), (4.0, "4.0"), (None, "None")],
)  # fmt: skip
def test_the_visit_volume_must_be_a_positive_decimal(max_total, shown):
    with pytest.raises(LesionError) as error:
        injection_plan([D(1)], max_total_ml=max_total)
    assert (error.value.field, error.value.reason) == (
        "max_total_ml",
        f"the visit's volume must be more than 0 mL (got {shown})",
    )


def test_fifty_lesions_are_planned_and_a_small_visit_volume_is_allowed():
    plan = injection_plan([D("0.2")] * 50, max_total_ml=D("0.05"))
    assert len(plan.rows) == 50
    assert [r.volume_ml for r in plan.rows[:2]] == [D("0.05"), D(0)]
    assert plan.total_ml == D("0.05")
    assert len(plan.deferred) == 49


def test_lesions_given_exactly_their_volume_are_not_deferred():
    plan = injection_plan([D(2), D(2), D(3)])
    assert [(r.index, r.volume_ml) for r in plan.rows] == [(2, D(2)), (0, D(1)), (1, D(1))]
    assert plan.deferred == ()
    assert plan.total_ml == D(4)
    assert plan.max_total_ml == D(4)
    assert plan.as_record() == [
        {"lesion": "3", "size_cm": "3", "volume_ml": "2"},
        {"lesion": "1", "size_cm": "2", "volume_ml": "1"},
        {"lesion": "2", "size_cm": "2", "volume_ml": "1"},
    ]


def test_any_positive_concentration_is_taken_as_given():
    # the smallest positive count is not refused: only a missing, boolean or non-positive one is
    dose = virus_dose(dose_number=2, pfu_per_ml_first_dose=None, pfu_per_ml=1, max_volume_ml=D("0.1"))
    assert (dose.concentration_pfu_per_ml, dose.max_volume_ml) == (1, D("0.1"))
    assert dose.note == "dose 2: 1 PFU/mL, up to 0.1 mL for all lesions (volume by lesion size)"
