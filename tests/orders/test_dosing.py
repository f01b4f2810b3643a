"""orders.dosing: BSA, dose, vial rounding, vials, bag, validation. Pure functions: no database."""
# ruff: noqa: RUF001 - cell numbers are written with the multiplication sign, as in "1.4 x 10⁸"

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from orders.dosing import (
    MAX_VIALS,
    CellDose,
    DoseBasis,
    DoseCalculation,
    DoseError,
    bsa_mosteller,
    calculate_dose,
    cell_dose,
    check_cell_product,
    format_cells,
)


def drug(strength, vials, c_min, c_max) -> dict[str, Any]:
    """A drug's catalogue values as calculate_dose arguments."""
    return {
        "strength_mg_per_ml": D(strength),
        "vial_contents_mg": tuple(D(v) for v in vials),
        "concentration_min": None if c_min is None else D(c_min),
        "concentration_max": None if c_max is None else D(c_max),
    }


IPILIMUMAB = drug(5, (50, 200), 1, 2)
NIVOLUMAB = drug(10, (40, 100, 240), None, None)  # no range given here: undiluted
PEMBROLIZUMAB = drug(25, (100,), 1, 10)
DURVALUMAB = drug(50, (120, 500), 1, 15)
ATEZOLIZUMAB = drug(60, (840, 1200), "3.2", "16.8")  # callers pass its own bag: 250 mL only
NIVOLUMAB_DILUTED = drug(10, (40, 100, 240), 1, 10)


def per_kg(amount, weight, drug, **extra) -> DoseCalculation:
    kwargs = {**drug, **extra}
    return calculate_dose(basis=DoseBasis.PER_KG, amount=D(amount), weight_kg=D(weight), height_cm=None, **kwargs)


def flat(amount, drug, **extra) -> DoseCalculation:
    kwargs = {**drug, **extra}
    return calculate_dose(basis=DoseBasis.FLAT, amount=D(amount), weight_kg=None, height_cm=None, **kwargs)


# --- BSA ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "weight", "bsa"),
    [
        ("170", "70", "1.82"),  # the reference example: sqrt(3.3056) = 1.8181
        ("180", "80", "2.00"),  # sqrt(4) exactly
        ("160", "50", "1.49"),  # sqrt(2.2222) = 1.4907
        ("150", "54", "1.50"),  # sqrt(2.25) exactly
        ("100", "16", "0.67"),  # sqrt(0.4444) = 0.6667
        ("175.5", "82.3", "2.00"),  # sqrt(4.0121) = 2.0030
        ("30", "0.5", "0.06"),  # the smallest accepted values
        ("260", "500", "6.01"),  # the largest accepted values: sqrt(36.111) = 6.0093
    ],
)
def test_bsa_mosteller(height, weight, bsa):
    result = bsa_mosteller(height_cm=D(height), weight_kg=D(weight))
    assert result == D(bsa)
    assert str(result) == bsa  # always two decimals


def test_bsa_rounds_half_up():
    # 3600 x 1.245^2 = 5580.09 -> sqrt(5580.09 / 3600) = 1.245 exactly -> 1.25 (half up, not banker's 1.24)
    assert bsa_mosteller(height_cm=D("100"), weight_kg=D("55.8009")) == D("1.25")


@pytest.mark.parametrize(
    ("height", "weight", "field", "reason"),
    [
        (D("29.9"), D(70), "height_cm", "29.9 cm is outside 30-260 cm"),
        (D(170), D("500.1"), "weight_kg", "500.1 kg is outside 0.5-500 kg"),
        ("tall", D(70), "height_cm", "not a number: 'tall'"),
        (D(170), "heavy", "weight_kg", "not a number: 'heavy'"),
    ],
)
def test_bsa_rejects_implausible_values(height, weight, field, reason):
    with pytest.raises(DoseError) as error:
        bsa_mosteller(height_cm=height, weight_kg=weight)
    assert (error.value.field, error.value.reason) == (field, reason)


# --- calculated dose and vial rounding -----------------------------------------------------------------------------


def test_ipilimumab_3_mg_per_kg_at_80_kg_rounds_to_200_plus_50_mg():
    result = per_kg(3, 80, IPILIMUMAB)
    assert result.calculated_mg == D(240)
    assert result.dose_mg == D("250.0")  # 200 + 50 mg is 4.2 % above 240 mg; one 200 mg vial is 16.7 % below
    assert str(result.dose_mg) == "250.0"
    assert result.rounded_to_vial
    assert result.rounding_note == (
        "rounded up from 240.0 mg to 250 mg = 1 x 200 mg + 1 x 50 mg (4.2 % difference, within 10 %)"
    )
    assert result.volume_to_draw_ml == D("50.0")
    assert result.vials == ((D(200), 1), (D(50), 1))  # exactly the combination rounded to: no waste
    assert result.vial_total_mg == result.dose_mg
    assert result.diluent_bag_ml == D(100)  # 50 mL: 250 / 100 = 2.5 mg/mL, above 2
    assert result.final_volume_ml == D("150.0")
    assert result.final_concentration_mg_per_ml == D("1.67")


def test_ipilimumab_240_mg_without_rounding_up_stays_240_mg():
    # A course's "do not round up": only 200 mg (16.7 % below) is a candidate, which is beyond 10 %.
    result = per_kg(3, 80, IPILIMUMAB, allow_round_up=False)
    assert result.dose_mg == D("240.0")
    assert not result.rounded_to_vial
    assert result.rounding_note == (
        "not rounded: rounding up is not allowed for this course, and the nearest vial total below, 200 mg "
        "(1 x 200 mg), is 16.7 % from 240.0 mg (more than 10 %)"
    )
    assert result.vials == ((D(200), 1), (D(50), 1))  # the least waste covering 240 mg
    assert result.allow_round_up is False


def test_without_rounding_up_a_dose_may_still_round_down():
    result = per_kg(3, 70, IPILIMUMAB, allow_round_up=False)  # 210 mg: 200 mg is 4.8 % below
    assert result.dose_mg == D(200)
    assert result.rounding_note == ("rounded down from 210.0 mg to 200 mg = 1 x 200 mg (4.8 % difference, within 10 %)")
    # 195 mg: 200 mg would be 2.6 % up, but only 150 mg (23 % down) is allowed
    result = per_kg(3, 65, IPILIMUMAB, allow_round_up=False)
    assert result.dose_mg == D(195)
    assert not result.rounded_to_vial


def test_without_rounding_up_and_no_total_below():
    result = per_kg(1, 47, IPILIMUMAB, concentration_min=None, concentration_max=None, allow_round_up=False)
    assert result.dose_mg == D(47)  # 50 mg would be 6.4 % up; nothing lies below 47 mg
    assert not result.rounded_to_vial
    assert result.rounding_note == (
        "not rounded: rounding up is not allowed for this course, and no vial total is below 47.0 mg"
    )
    assert per_kg(1, 47, IPILIMUMAB, concentration_min=None, concentration_max=None).dose_mg == D(50)


def test_nivolumab_3_mg_per_kg_at_70_kg_rounds_to_the_smaller_of_two_equally_near_totals():
    result = per_kg(3, 70, NIVOLUMAB)  # 40, 100 and 240 mg vials
    assert result.calculated_mg == D(210)
    assert result.dose_mg == D("200.0")  # 200 (2 x 100) and 220 (100 + 3 x 40) mg are both 4.8 % away
    assert result.rounded_to_vial
    assert result.rounding_note == "rounded down from 210.0 mg to 200 mg = 2 x 100 mg (4.8 % difference, within 10 %)"
    assert result.vials == ((D(100), 2),)
    assert result.volume_to_draw_ml == D("20.0")


def test_3_mg_per_kg_at_65_kg_rounds_to_the_200_mg_vial():
    result = per_kg(3, 65, IPILIMUMAB)
    assert result.calculated_mg == D(195)
    assert result.dose_mg == D("200.0")  # |195 - 200| / 195 = 2.6 %
    assert result.rounded_to_vial
    assert result.rounding_note == "rounded up from 195.0 mg to 200 mg = 1 x 200 mg (2.6 % difference, within 10 %)"
    assert result.volume_to_draw_ml == D("40.0")
    assert result.vials == ((D(200), 1),)


@pytest.mark.parametrize(
    ("amount", "weight", "calculated", "dose", "rounded"),
    [
        ("3", "61", "183", "200.0", True),  # |183 - 200| / 183 = 9.3 %
        ("3", "60", "180", "180.0", False),  # 20 / 180 = 11.1 %
        ("3", "70", "210", "200.0", True),  # 10 / 210 = 4.8 %: down to the vial
        ("3", "73", "219", "200.0", True),  # 19 / 219 = 8.7 %
        ("3", "74", "222", "200.0", True),  # 22 / 222 = 9.9 %
        ("3", "74.1", "222.3", "222.3", False),  # 22.3 / 222.3 = 10.03 %
        ("1", "50", "50", "50.0", False),  # exactly one vial: nothing to round
        ("1", "52", "52", "50.0", True),  # 3.8 %
        ("1", "56", "56", "56.0", False),  # 6 / 56 = 10.7 %
        ("3", "80", "240", "250.0", True),  # the reference example: 200 + 50 mg, 4.2 %
        ("3", "45", "135", "135.0", False),  # 150 mg = 3 x 50 is 11.1 % away, 100 mg 25.9 %
        ("3", "47", "141", "150.0", True),  # 6.4 %
        ("1", "12", "12", "12.0", False),  # far below the smallest vial
        ("1.5", "43.3", "64.95", "65.0", False),  # to 0.1 mg, half up
        ("1.5", "43.1", "64.65", "64.7", False),
    ],
)
def test_vial_rounding_against_the_calculated_dose(amount, weight, calculated, dose, rounded):
    result = per_kg(amount, weight, IPILIMUMAB, concentration_min=None, concentration_max=None)
    assert result.calculated_mg == D(calculated)
    assert result.dose_mg == D(dose)
    assert str(result.dose_mg) == dose
    assert result.rounded_to_vial is rounded


def test_tolerance_boundary_is_inclusive():
    drug = {**NIVOLUMAB, "vial_contents_mg": (D(110),)}
    assert per_kg(1, 100, drug).dose_mg == D(110)  # |100 - 110| / 100 = exactly 10 %: rounded
    assert per_kg(1, "99.9", drug).dose_mg == D("99.9")  # 10.1 / 99.9 = 10.11 %: not rounded
    assert per_kg(3, "60.6", IPILIMUMAB).dose_mg == D("181.8")  # 18.2 / 181.8 = 10.01 %: not rounded


@pytest.mark.parametrize(
    ("tolerance", "dose", "rounded"),
    [(D(10), D(200), True), (D(5), D(200), True), (D("2.5"), D(195), False), (D(0), D(195), False)],
)
def test_rounding_tolerance_is_a_parameter(tolerance, dose, rounded):
    result = per_kg(3, 65, IPILIMUMAB, rounding_tolerance_percent=tolerance)  # 2.56 % from 200 mg
    assert result.dose_mg == dose
    assert result.rounded_to_vial is rounded


def test_rounding_considers_combinations_of_vials():
    # 245 mg: 200 + 50 = 250 is 2 % away (a single 200 mg vial is 18.4 % away)
    result = per_kg(5, 49, IPILIMUMAB)
    assert result.calculated_mg == D(245)
    assert result.dose_mg == D(250)
    assert result.rounded_to_vial
    assert result.vials == ((D(200), 1), (D(50), 1))
    # 440 mg: 2 x 200 + 50 = 450 mg (2.3 %), three vials
    result = per_kg(8, 55, IPILIMUMAB, concentration_min=None, concentration_max=None)
    assert result.dose_mg == D(450)
    assert result.vials == ((D(200), 2), (D(50), 1))


def test_rounding_picks_the_nearest_vial_and_the_smaller_on_a_tie():
    drug = {**NIVOLUMAB, "vial_contents_mg": (D(95), D(100), D(105))}
    assert per_kg(1, 99, drug).dose_mg == D(100)  # 1 % vs 4 % vs 6 %
    drug = {**NIVOLUMAB, "vial_contents_mg": (D(95), D(105))}
    assert per_kg(1, 100, drug).dose_mg == D(95)  # 5 % either way: the smaller vial


def test_flat_doses_are_never_rounded_and_record_weight_and_height():
    result = calculate_dose(
        basis=DoseBasis.FLAT, amount=D(190), weight_kg=D(70), height_cm=D(170), **IPILIMUMAB
    )  # 190 mg is 5 % from the 200 mg vial, but a fixed dose is given as prescribed
    assert result.dose_mg == D(190)
    assert not result.rounded_to_vial
    assert result.rounding_note == "flat dose: not rounded"
    assert result.weight_kg == D(70)
    assert result.height_cm == D(170)
    assert result.bsa_m2 is None  # not used for a flat dose


@pytest.mark.parametrize(
    ("amount", "vials", "volume", "bag", "final", "concentration"),
    [
        # pembrolizumab 25 mg/mL, 1-10 mg/mL: 200 mg = 8 mL in 50 mL -> 3.45 mg/mL
        ("200", ((D(100), 2),), "8.0", "50", "58.0", "3.45"),
        ("400", ((D(100), 4),), "16.0", "50", "66.0", "6.06"),
    ],
)
def test_flat_pembrolizumab(amount, vials, volume, bag, final, concentration):
    result = flat(amount, PEMBROLIZUMAB)
    assert result.dose_mg == D(amount)
    assert result.vials == vials
    assert result.volume_to_draw_ml == D(volume)
    assert result.diluent_bag_ml == D(bag)
    assert result.final_volume_ml == D(final)
    assert result.final_concentration_mg_per_ml == D(concentration)


def test_per_m2_uses_the_rounded_mosteller_bsa():
    result = calculate_dose(
        basis=DoseBasis.PER_M2,
        amount=D(30),  # fludarabine-like 30 mg/m2
        weight_kg=D(70),
        height_cm=D(170),
        strength_mg_per_ml=D(25),
        vial_contents_mg=(D(50),),
        concentration_min=None,
        concentration_max=None,
    )
    assert result.bsa_m2 == D("1.82")
    assert result.calculated_mg == D("54.60")  # 30 x 1.82, not 30 x 1.8181
    assert result.dose_mg == D("50.0")  # 4.6/54.6 = 8.4 % from the 50 mg vial
    assert result.rounded_to_vial
    assert result.volume_to_draw_ml == D("2.0")
    assert result.diluent_bag_ml is None


def test_per_m2_not_rounded():
    result = calculate_dose(
        basis=DoseBasis.PER_M2,
        amount=D(500),
        weight_kg=D(80),
        height_cm=D(180),
        strength_mg_per_ml=D(20),
        vial_contents_mg=(D(500), D(1000)),
        concentration_min=None,
        concentration_max=None,
    )
    assert result.bsa_m2 == D("2.00")
    assert result.dose_mg == D(1000)  # exactly the 1000 mg vial
    assert result.volume_to_draw_ml == D(50)


# --- maximum dose ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "dose", "capped"),
    [
        ("25", "500.0", False),
        ("29.9", "600.0", False),  # 598 mg: 5 x 120 mg = 600 mg is 0.3 % away
        ("75", "1500.0", False),
        ("75.1", "1500.0", True),
    ],
)
def test_durvalumab_20_mg_per_kg_is_capped_at_1500_mg(weight, dose, capped):
    result = per_kg(20, weight, DURVALUMAB, max_dose_mg=D(1500))
    assert result.dose_mg == D(dose)
    assert not (capped and result.rounded_to_vial)
    assert ("capped at the maximum dose 1500 mg" in result.rounding_note) is capped


def test_capped_note_and_vials():
    result = per_kg(20, 90, DURVALUMAB, max_dose_mg=D(1500))
    assert result.calculated_mg == D(1800)
    assert result.rounding_note == "capped at the maximum dose 1500 mg (calculated 1800.0 mg)"
    assert result.vials == ((D(500), 3),)
    assert result.volume_to_draw_ml == D("30.0")
    assert result.diluent_bag_ml == D(100)  # 1500 / 80 = 18.75 in 50 mL is above 15
    assert result.final_concentration_mg_per_ml == D("11.54")


def test_rounding_never_goes_above_the_maximum_dose():
    # 465 mg from 120 and 500 mg vials: 480 mg (4 x 120) is 3.2 % up; 360 mg is 22.6 % down
    result = per_kg(15, 31, DURVALUMAB, max_dose_mg=D(480))
    assert result.dose_mg == D(480)  # at the maximum: allowed
    assert result.vials == ((D(120), 4),)
    result = per_kg(15, 31, DURVALUMAB, max_dose_mg=D(470))
    assert result.calculated_mg == D(465)
    assert result.dose_mg == D(465)
    assert not result.rounded_to_vial
    assert result.rounding_note == (
        "not rounded: the maximum dose is 470 mg, and the nearest vial total at or below it, 360 mg (3 x 120 mg), "
        "is 22.6 % from 465.0 mg (more than 10 %)"
    )


# --- vials ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "sizes", "vials"),
    [
        ("240", (50, 200), ((200, 1), (50, 1))),  # 250 mg, 2 vials (not 5 x 50)
        ("200", (50, 200), ((200, 1),)),
        ("400", (50, 200), ((200, 2),)),
        ("410", (50, 200), ((200, 2), (50, 1))),
        ("120", (50, 200), ((50, 3),)),  # 150 mg wastes less than one 200 mg vial
        ("12", (50, 200), ((50, 1),)),
        ("210", (40, 100, 240), ((100, 1), (40, 3))),  # 220 mg: less waste than 1 x 240 mg
        ("240", (40, 100, 240), ((240, 1),)),
        ("480", (40, 100, 240), ((240, 2),)),
        ("1500", (120, 500), ((500, 3),)),
        ("1120", (120, 500), ((500, 2), (120, 1))),
        ("1200", (840, 1200), ((1200, 1),)),
        ("1680", (840, 1200), ((840, 2),)),
        ("60", (50, 500), ((50, 2),)),
        ("12.5", ("12.5", 50), ((D("12.5"), 1),)),
        ("100", (30, 50, 70), ((70, 1), (30, 1))),  # 70 + 30 and 50 + 50 tie: the largest vial is tried first
        ("30", (8, 9, 11, 12), ((12, 1), (9, 2))),  # 12 + 9 + 9 and 11 + 11 + 8: the one with the 12 mg vial
    ],
)
def test_vials_least_waste_then_fewest(dose, sizes, vials):
    drug = {**NIVOLUMAB, "strength_mg_per_ml": D(10), "vial_contents_mg": tuple(D(s) for s in sizes)}
    result = flat(dose, drug)
    assert result.vials == tuple((D(content), count) for content, count in vials)
    assert result.vial_total_mg >= result.dose_mg


# --- diluent bag ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "bag", "final", "concentration"),
    [
        ("90", "50", "68.0", "1.32"),  # 18 mL + 50 mL
        ("100", "50", "70.0", "1.43"),
        ("160", "50", "82.0", "1.95"),  # 1.951 <= 2
        ("170", "100", "134.0", "1.27"),  # 50 mL: 170 / 84 = 2.02 > 2
        ("300", "100", "160.0", "1.88"),
        ("400", "250", "330.0", "1.21"),  # 100 mL: 400 / 180 = 2.22
        ("600", "250", "370.0", "1.62"),
        ("900", "500", "680.0", "1.32"),  # 250 mL: 900 / 430 = 2.09
    ],
)
def test_smallest_bag_within_the_concentration_range(dose, bag, final, concentration):
    result = flat(dose, IPILIMUMAB)
    assert result.diluent_bag_ml == D(bag)
    assert result.final_volume_ml == D(final)
    assert result.final_concentration_mg_per_ml == D(concentration)
    assert D(1) <= result.final_concentration_mg_per_ml <= D(2)


def test_concentration_bounds_are_inclusive():
    # 100 mg = 20 mL; in a 30 mL bag: 100 / 50 = exactly 2 mg/mL
    assert flat(100, IPILIMUMAB, bag_sizes_ml=(D(30), D(100))).diluent_bag_ml == D(30)
    # 120 mg = 24 mL; in a 96 mL bag: 120 / 120 = exactly 1 mg/mL
    assert flat(120, IPILIMUMAB, bag_sizes_ml=(D(96),)).diluent_bag_ml == D(96)


def test_the_check_uses_the_unrounded_concentration():
    # 100 mg = 20 mL in 80.4 mL: 0.996 mg/mL would show as 1.00 but is below 1
    with pytest.raises(DoseError) as error:
        flat(100, IPILIMUMAB, bag_sizes_ml=(D("80.4"),))
    assert error.value.field == "concentration"


def test_bag_sizes_are_a_parameter_and_their_order_does_not_matter():
    result = flat(240, IPILIMUMAB, bag_sizes_ml=(D(500), D(150), D(250)))
    assert result.diluent_bag_ml == D(150)  # 240 / 198 = 1.21
    assert result.bag_sizes_ml == (D(500), D(250), D(150))


def test_a_dose_too_dilute_in_every_bag():
    with pytest.raises(DoseError) as error:
        per_kg(1, 12, IPILIMUMAB)  # 12 mg = 2.4 mL; 12 / 52.4 = 0.23 mg/mL at best
    assert error.value.field == "concentration"
    assert error.value.reason == (
        "12.0 mg in any bag of 50-500 mL gives 0.02-0.23 mg/mL; the label range is 1-2 mg/mL: none fits "
        "(too dilute in 50, 100, 250 and 500 mL); it would need a final volume of 6.0-12.0 mL, of which 2.4 mL "
        "is drug"
    )
    assert str(error.value).startswith("concentration: 12.0 mg in any bag")


def test_a_dose_between_two_bags():
    with pytest.raises(DoseError) as error:
        flat(240, IPILIMUMAB, concentration_max=D("1.2"))
    assert error.value.field == "concentration"
    assert error.value.reason == (
        "240.0 mg in any bag of 50-500 mL gives 0.44-2.45 mg/mL; the label range is 1-1.2 mg/mL: none fits "
        "(too concentrated in 50 and 100 mL; too dilute in 250 and 500 mL); it would need a final volume of "
        "200.0-240.0 mL, of which 48.0 mL is drug"
    )


def test_a_dose_too_concentrated_in_every_bag():
    with pytest.raises(DoseError) as error:
        flat(2000, IPILIMUMAB)  # 2000 mg in 900 mL at most: 2.22 mg/mL
    assert error.value.field == "concentration"
    assert "too concentrated in 50, 100, 250 and 500 mL" in error.value.reason
    assert "1000.0-2000.0 mL" in error.value.reason


def test_one_sided_concentration_range():
    assert flat(200, {**PEMBROLIZUMAB, "concentration_min": None}).diluent_bag_ml == D(50)
    with pytest.raises(DoseError) as error:
        flat(600, {**PEMBROLIZUMAB, "concentration_min": None}, bag_sizes_ml=(D(25),))  # 600 / 49 = 12.2
    assert "the label range is at most 10 mg/mL" in error.value.reason
    assert "a final volume of at least 60.0 mL" in error.value.reason
    with pytest.raises(DoseError) as error:
        flat(10, {**PEMBROLIZUMAB, "concentration_max": None})  # 10 mg in 50.4 mL: 0.2 mg/mL
    assert "the label range is at least 1 mg/mL" in error.value.reason


def test_a_drug_weaker_than_the_minimum_concentration():
    drug = {**IPILIMUMAB, "strength_mg_per_ml": D("0.5")}
    with pytest.raises(DoseError) as error:
        flat(10, drug)
    assert error.value.reason.endswith("the drug itself is only 0.5 mg/mL")


def test_without_a_concentration_range_the_product_is_given_undiluted():
    # e.g. a CAR-T bag, or an undiluted syringe
    result = per_kg(3, 70, NIVOLUMAB)  # 210 mg rounds to 200 mg
    assert result.diluent_bag_ml is None
    assert result.final_volume_ml == result.volume_to_draw_ml == D("20.0")
    assert result.final_concentration_mg_per_ml == D("10.00")


# --- the record -----------------------------------------------------------------------------------------------------


def test_as_record_holds_every_input_and_output_as_strings():
    record = per_kg(3, 80, IPILIMUMAB).as_record()
    assert record == {
        "basis": "mg_per_kg",
        "amount": "3",
        "amount_unit": "mg/kg",
        "weight_kg": "80",
        "height_cm": "",
        "bsa_m2": "",
        "bsa_formula": "",
        "calculated_mg": "240",
        "max_dose_mg": "",
        "rounding_tolerance_percent": "10",
        "allow_round_up": "true",
        "dose_mg": "250.0",
        "dose_step_mg": "0.1",
        "volume_step_ml": "0.1",
        "rounded_to_vial": "true",
        "rounding_note": "rounded up from 240.0 mg to 250 mg = 1 x 200 mg + 1 x 50 mg (4.2 % difference, within 10 %)",
        "strength_mg_per_ml": "5",
        "volume_to_draw_ml": "50.0",
        "vial_contents_mg": "200, 50",
        "vials": "1 x 200 mg + 1 x 50 mg",
        "vial_count": "2",
        "vial_total_mg": "250",
        "concentration_min": "1",
        "concentration_max": "2",
        "bag_sizes_ml": "500, 250, 100, 50",
        "may_give_undiluted": "false",
        "max_final_volume_ml": "",
        "diluent_bag_ml": "100",
        "final_volume_ml": "150.0",
        "final_concentration_mg_per_ml": "1.67",
    }
    assert json.loads(json.dumps(record)) == record


def test_as_record_per_m2_and_capped():
    record = calculate_dose(
        basis=DoseBasis.PER_M2,
        amount=D("1000"),
        weight_kg=D(70),
        height_cm=D(170),
        max_dose_mg=D("1500"),
        **DURVALUMAB,
    ).as_record()
    assert record["bsa_m2"] == "1.82"
    assert record["bsa_formula"] == "mosteller"
    assert record["amount_unit"] == "mg/m²"
    assert record["calculated_mg"] == "1820.00"
    assert record["dose_mg"] == "1500.0"
    assert record["max_dose_mg"] == "1500"
    assert (record["weight_kg"], record["height_cm"]) == ("70", "170")
    assert all(isinstance(value, str) for value in record.values())


def test_large_numbers_are_written_without_exponents():
    result = flat(D("1E+3"), {**NIVOLUMAB, "vial_contents_mg": (D("5E+2"), D("5.0E+1"))})
    record = result.as_record()
    assert record["amount"] == "1000"
    assert record["vial_contents_mg"] == "500, 50"
    assert record["vials"] == "2 x 500 mg"
    assert [str(content) for content in result.vial_contents_mg] == ["500", "50"]  # the Decimals too
    assert [str(size) for size in result.bag_sizes_ml] == ["500", "250", "100", "50"]


def test_the_result_is_immutable():
    result = per_kg(3, 80, IPILIMUMAB)
    with pytest.raises(AttributeError):
        result.dose_mg = D(1)  # type: ignore[misc]


# --- validation -----------------------------------------------------------------------------------------------------


def dose_kwargs(**changes):
    kwargs: dict[str, Any] = {"basis": DoseBasis.PER_KG, "amount": D(3), "weight_kg": D(80), "height_cm": D(170)}
    kwargs.update(IPILIMUMAB)
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"amount": D(0)}, "amount", "must be more than 0 (got 0)"),
        ({"amount": D(-3)}, "amount", "must be more than 0 (got -3)"),
        ({"amount": D("NaN")}, "amount", "not a finite number: Decimal('NaN')"),
        ({"amount": D("Infinity")}, "amount", "not a finite number: Decimal('Infinity')"),
        ({"amount": "three"}, "amount", "not a number: 'three'"),
        ({"amount": True}, "amount", "not a number: True"),
        ({"weight_kg": None}, "weight_kg", "a mg/kg dose needs the patient's weight"),
        ({"weight_kg": D("0.4")}, "weight_kg", "0.4 kg is outside 0.5-500 kg"),
        ({"weight_kg": D("500.1")}, "weight_kg", "500.1 kg is outside 0.5-500 kg"),
        ({"weight_kg": D(0)}, "weight_kg", "0 kg is outside 0.5-500 kg"),
        ({"height_cm": D("29.9")}, "height_cm", "29.9 cm is outside 30-260 cm"),
        ({"height_cm": D(261)}, "height_cm", "261 cm is outside 30-260 cm"),
        ({"basis": DoseBasis.FLAT, "weight_kg": D(600)}, "weight_kg", "600 kg is outside 0.5-500 kg"),
        (
            {"basis": DoseBasis.PER_M2, "weight_kg": None},
            "weight_kg",
            "a mg/m² dose needs the patient's weight (for the BSA)",
        ),
        (
            {"basis": DoseBasis.PER_M2, "height_cm": None},
            "height_cm",
            "a mg/m² dose needs the patient's height (for the BSA)",
        ),
        ({"basis": "per_lb"}, "basis", "unknown dose basis 'per_lb'"),
        ({"strength_mg_per_ml": D(0)}, "strength_mg_per_ml", "must be more than 0 (got 0)"),
        ({"strength_mg_per_ml": D("-5")}, "strength_mg_per_ml", "must be more than 0 (got -5)"),
        ({"vial_contents_mg": ()}, "vial_contents_mg", "at least one vial content is needed"),
        ({"vial_contents_mg": (D(50), D(0))}, "vial_contents_mg", "every vial content must be more than 0 (got 0)"),
        ({"bag_sizes_ml": ()}, "bag_sizes_ml", "at least one bag size is needed"),
        ({"bag_sizes_ml": (D(-50),)}, "bag_sizes_ml", "every bag size must be more than 0 (got -50)"),
        ({"concentration_min": D(0)}, "concentration_min", "must be more than 0 (got 0)"),
        ({"concentration_max": D(-1)}, "concentration_max", "must be more than 0 (got -1)"),
        ({"concentration_min": D(3)}, "concentration", "the minimum 3 mg/mL is above the maximum 2 mg/mL"),
        ({"rounding_tolerance_percent": D(-1)}, "rounding_tolerance_percent", "must not be negative"),
        ({"max_dose_mg": D(0)}, "max_dose_mg", "must be more than 0 (got 0)"),
        ({"max_final_volume_ml": D(0)}, "max_final_volume_ml", "must be more than 0 (got 0)"),
        ({"weight_kg": "heavy"}, "weight_kg", "not a number: 'heavy'"),
        ({"height_cm": "tall"}, "height_cm", "not a number: 'tall'"),
        ({"vial_contents_mg": ("abc",)}, "vial_contents_mg", "not a number: 'abc'"),
        (
            {"vial_contents_mg": (D("12.55"), D(50))},
            "vial_contents_mg",
            "vial contents are given to 0.1 mg (got 12.55)",
        ),
        ({"rounding_tolerance_percent": "ten"}, "rounding_tolerance_percent", "not a number: 'ten'"),
        ({"amount": D("0.0001")}, "amount", "the dose 0.008 mg rounds to 0 mg"),
        ({"amount": D("0.00125")}, "amount", "0.1 mg is less than 0.1 mL of 5 mg/mL: too small to measure"),
        (
            {"amount": D(3000)},
            "amount",
            "240000.0 mg would need at least 1200 vials of 200 mg (more than 100): check the dose and its unit",
        ),
    ],
)
def test_invalid_inputs_name_the_field(changes, field, reason):
    with pytest.raises(DoseError) as error:
        calculate_dose(**dose_kwargs(**changes))
    assert error.value.field == field
    assert error.value.reason == reason
    assert isinstance(error.value, ValueError)


def test_dose_error_pickles():
    import pickle

    error = pickle.loads(pickle.dumps(DoseError("weight_kg", "needed")))  # noqa: S301 - our own object
    assert (error.field, error.reason, str(error)) == ("weight_kg", "needed", "weight_kg: needed")
    assert error.args == DoseError("weight_kg", "needed").args == ("weight_kg", "needed")


def test_ints_and_strings_are_accepted_as_decimals():
    result = calculate_dose(
        basis=DoseBasis.PER_KG,
        amount=3,  # type: ignore[arg-type]
        weight_kg="80",  # type: ignore[arg-type]
        height_cm=None,
        strength_mg_per_ml=5,  # type: ignore[arg-type]
        vial_contents_mg=[50, 200],  # type: ignore[list-item]
        concentration_min=1,  # type: ignore[arg-type]
        concentration_max=2,  # type: ignore[arg-type]
    )
    assert result.dose_mg == D(250)
    assert isinstance(result.weight_kg, D)
    assert result.vials == ((D(200), 1), (D(50), 1))


def test_many_small_vials_are_counted_exactly():
    # 99 mg from 1 mg and 100 mg vials: 99 x 1 mg wastes nothing, so it wins over 1 x 100 mg
    result = flat(99, drug(10, (1, 100), None, None))
    assert result.vials == ((D(1), 99),)
    # 2 x 100 + 1 x 1 for 201 mg
    assert flat(201, drug(10, (1, 100), None, None)).vials == ((D(100), 2), (D(1), 1))


# --- rounding: edges ------------------------------------------------------------------------------------------------


def test_without_a_tolerance_nothing_is_rounded():
    result = per_kg(3, 65, IPILIMUMAB, rounding_tolerance_percent=None)  # 195 mg, 2.6 % from 200 mg
    assert result.dose_mg == D(195)
    assert not result.rounded_to_vial
    assert result.rounding_note == "not rounded: rounding to vials is off (no tolerance)"
    assert result.rounding_tolerance_percent is None
    assert result.as_record()["rounding_tolerance_percent"] == ""
    assert result.vials == ((D(200), 1),)


def test_a_dose_that_is_exactly_a_combination_is_not_rounded():
    result = per_kg(5, 50, IPILIMUMAB)  # 250 mg
    assert result.dose_mg == D(250)
    assert not result.rounded_to_vial
    assert result.rounding_note == "250.0 mg is exactly 1 x 200 mg + 1 x 50 mg: no rounding needed"


def test_a_dose_far_below_the_smallest_vial_is_not_rounded_and_does_not_crash():
    big_vials = drug(20, (840, 1000), None, None)
    result = per_kg(1, 100, big_vials)  # 100 mg from 840 and 1000 mg vials
    assert result.dose_mg == D(100)
    assert not result.rounded_to_vial
    assert result.rounding_note == (
        "not rounded: the nearest vial total, 840 mg (1 x 840 mg), is 740.0 % from 100.0 mg (more than 10 %)"
    )
    assert result.vials == ((D(840), 1),)
    assert flat(100, big_vials).vials == ((D(840), 1),)


@pytest.mark.parametrize("tolerance", [D(10), D(0), None])
def test_a_dose_the_vials_cannot_make_exactly_gets_whole_vials(tolerance):
    # 1045 mg from 12.5 and 50 mg vials: 1050 mg is 21 x 50 mg (not "1 x 12.5 mg", not 84 x 12.5 mg)
    vials = drug(25, ("12.5", 50), None, None)
    result = per_kg(11, 95, vials, rounding_tolerance_percent=tolerance)
    assert result.calculated_mg == D(1045)
    assert result.dose_mg == (D(1045) if tolerance is None or tolerance == 0 else D(1050))
    assert result.vials == ((D(50), 21),)
    assert result.as_record()["vials"] == "21 x 50 mg"
    assert flat(1045, vials).vials == ((D(50), 21),)
    # 1037.5 mg is reachable: 20 x 50 + 3 x 12.5
    assert flat("1037.5", vials).vials == ((D(50), 20), (D("12.5"), 3))


def test_rounding_to_a_total_with_a_half_milligram_vial():
    vials = drug(25, ("12.5", 50), None, None)
    result = per_kg("1.5", "41.5", vials)  # 62.25 mg: 62.5 mg (50 + 12.5) is 0.4 % up
    assert result.dose_mg == D("62.5")
    assert str(result.dose_mg) == "62.5"
    assert result.rounding_note == (
        "rounded up from 62.3 mg to 62.5 mg = 1 x 50 mg + 1 x 12.5 mg (0.4 % difference, within 10 %)"
    )


def test_a_vial_equal_to_the_maximum_dose():
    atezolizumab = {**ATEZOLIZUMAB, "bag_sizes_ml": (D(250),)}
    result = per_kg(15, 80, atezolizumab, max_dose_mg=D(1200))  # 1200 mg: the vial and the maximum
    assert result.dose_mg == D(1200)
    assert result.rounding_note == "1200.0 mg is exactly 1 x 1200 mg: no rounding needed"
    assert result.vials == ((D(1200), 1),)
    result = per_kg(15, 78, atezolizumab, max_dose_mg=D(1200))  # 1170 mg: up to the maximum, 2.6 %
    assert result.dose_mg == D(1200)
    assert result.rounded_to_vial
    result = per_kg(15, 81, atezolizumab, max_dose_mg=D(1200))  # 1215 mg: capped, not rounded
    assert result.dose_mg == D(1200)
    assert not result.rounded_to_vial
    assert result.rounding_note == "capped at the maximum dose 1200 mg (calculated 1215.0 mg)"
    assert result.vials == ((D(1200), 1),)


def test_with_every_total_above_the_maximum_dose_nothing_is_rounded():
    result = per_kg(1, 47, IPILIMUMAB, concentration_min=None, concentration_max=None, max_dose_mg=D(48))
    assert result.dose_mg == D(47)  # 50 mg is 6.4 % up, but above the maximum
    assert not result.rounded_to_vial
    assert result.rounding_note == "not rounded: the maximum dose is 48 mg, and no vial total is at or below it"


def test_exactly_max_vials_and_one_more():
    undiluted = {**IPILIMUMAB, "concentration_min": None, "concentration_max": None}
    assert MAX_VIALS == 100
    result = flat(20000, undiluted)
    assert result.vials == ((D(200), 100),)
    assert result.vial_count == MAX_VIALS
    with pytest.raises(DoseError) as error:
        flat("20000.1", undiluted)
    assert error.value.field == "amount"
    assert error.value.reason == (
        "20000.1 mg would need at least 101 vials of 200 mg (more than 100): check the dose and its unit"
    )


def test_no_combination_has_more_than_max_vials():
    small = drug(10, (1, 100), None, None)
    # 299 mg: 2 x 100 + 99 x 1 would waste nothing but is 101 vials; 3 x 100 mg wastes 1 mg
    assert flat(299, small).vials == ((D(100), 3),)
    assert flat(199, small).vials == ((D(100), 1), (D(1), 99))  # exactly 100 vials: allowed
    # rounding skips a total that needs more than MAX_VIALS vials: 299.2 mg goes to 300, not 299
    result = per_kg("5.984", 50, small)
    assert result.calculated_mg == D("299.200")
    assert result.dose_mg == D(300)
    assert result.vials == ((D(100), 3),)


def test_vial_contents_too_finely_divided_to_combine():
    with pytest.raises(DoseError) as error:
        flat(60000, drug(1000, ("0.1", 1000), None, None))
    assert error.value.field == "vial_contents_mg"
    assert error.value.reason == "the vial contents are too finely divided to combine (use 0.1 mg)"
    assert flat(49000, drug(1000, ("0.1", 1000), None, None)).vials == ((D(1000), 49),)


# --- bag, undiluted, maximum final volume ---------------------------------------------------------------------------


def test_atezolizumab_1200_mg_fits_its_250_ml_bag():
    result = flat(1200, ATEZOLIZUMAB, bag_sizes_ml=(D(250),))
    assert result.volume_to_draw_ml == D("20.0")
    assert result.diluent_bag_ml == D(250)
    assert result.final_volume_ml == D("270.0")
    assert result.final_concentration_mg_per_ml == D("4.44")  # within 3.2-16.8


def test_atezolizumab_840_mg_in_250_ml_is_just_below_its_minimum_concentration():
    # 840 mg = 14 mL; 840 / (250 + 14) = 3.18 mg/mL < 3.2. (The label's 3.36 mg/mL counts 250 mL in all.)
    with pytest.raises(DoseError) as error:
        flat(840, ATEZOLIZUMAB, bag_sizes_ml=(D(250),))
    assert error.value.field == "concentration"
    assert error.value.reason == (
        "840.0 mg in a 250 mL bag gives 3.18 mg/mL; the label range is 3.2-16.8 mg/mL: none fits "
        "(too dilute in 250 mL); it would need a final volume of 50.0-262.5 mL, of which 14.0 mL is drug"
    )


def test_ipilimumab_given_undiluted_when_no_bag_reaches_1_mg_per_ml():
    # 1 mg/kg at 50 kg = 50 mg = 10 mL; in 50 mL: 50 / 60 = 0.83 mg/mL
    with pytest.raises(DoseError) as error:
        per_kg(1, 50, IPILIMUMAB)
    assert error.value.field == "concentration"
    result = per_kg(1, 50, IPILIMUMAB, may_give_undiluted=True)
    assert result.diluent_bag_ml is None
    assert result.final_volume_ml == result.volume_to_draw_ml == D("10.0")
    assert result.final_concentration_mg_per_ml == D("5.00")
    record = result.as_record()
    assert (record["diluent_bag_ml"], record["may_give_undiluted"]) == ("", "true")


def test_undiluted_only_when_no_bag_fits():
    result = per_kg(3, 80, IPILIMUMAB, may_give_undiluted=True)
    assert result.diluent_bag_ml == D(100)
    assert result.may_give_undiluted is True


def test_nivolumab_240_mg_within_160_ml():
    result = flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(160))
    assert (result.diluent_bag_ml, result.final_volume_ml) == (D(50), D("74.0"))
    assert result.final_concentration_mg_per_ml == D("3.24")
    result = flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(160), bag_sizes_ml=(D(100),))
    assert (result.diluent_bag_ml, result.final_volume_ml) == (D(100), D("124.0"))
    assert result.max_final_volume_ml == D(160)
    assert result.as_record()["max_final_volume_ml"] == "160"


def test_the_maximum_final_volume_is_inclusive():
    assert flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(74)).diluent_bag_ml == D(50)
    # 73.9 mL: the 50 mL bag makes 74 mL; the next one fitting the concentration is larger still
    result = flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D("73.9"), may_give_undiluted=True)
    assert result.diluent_bag_ml is None
    assert flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(24), may_give_undiluted=True).final_volume_ml == D(24)


def test_nivolumab_240_mg_at_15_kg_is_more_than_4_ml_per_kg():
    # 4 mL/kg x 15 kg = 60 mL; 24 mL of drug + the 50 mL bag = 74 mL
    with pytest.raises(DoseError) as error:
        flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(60))
    assert error.value.field == "final_volume"
    assert error.value.reason == (
        "240.0 mg is 24.0 mL of drug and the final volume may be at most 60 mL: the smallest bag within "
        "1-10 mg/mL, 50 mL, makes 74.0 mL; the label does not allow giving it undiluted"
    )
    result = flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(60), may_give_undiluted=True)
    assert result.diluent_bag_ml is None
    assert result.final_volume_ml == D("24.0")
    assert result.final_concentration_mg_per_ml == D("10.00")


def test_too_much_volume_even_undiluted():
    with pytest.raises(DoseError) as error:
        flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D("23.9"), may_give_undiluted=True)
    assert error.value.field == "final_volume"
    assert error.value.reason == (
        "240.0 mg is 24.0 mL of drug and the final volume may be at most 23.9 mL: the smallest bag within "
        "1-10 mg/mL, 50 mL, makes 74.0 mL; undiluted it is 24.0 mL, still too much"
    )
    # no bag reaches the concentration, and undiluted is too much: the volume is what rules it out
    with pytest.raises(DoseError) as error:
        per_kg(1, 50, IPILIMUMAB, may_give_undiluted=True, max_final_volume_ml=D(5))
    assert error.value.reason == (
        "50.0 mg is 10.0 mL of drug and the final volume may be at most 5 mL: undiluted it is 10.0 mL, still too much"
    )
    # a product without a concentration range is always undiluted
    with pytest.raises(DoseError) as error:
        flat(240, NIVOLUMAB, max_final_volume_ml=D(20))
    assert (error.value.field, error.value.reason) == (
        "final_volume",
        "240.0 mg is 24.0 mL of drug and the final volume may be at most 20 mL: undiluted it is 24.0 mL, "
        "still too much",
    )
    assert flat(240, NIVOLUMAB, max_final_volume_ml=D(24)).final_volume_ml == D(24)


def test_a_concentration_problem_stays_a_concentration_problem_under_a_volume_limit():
    with pytest.raises(DoseError) as error:
        per_kg(1, 12, IPILIMUMAB, max_final_volume_ml=D(1000))
    assert error.value.field == "concentration"
    # the 250 mL bag is too dilute; the 50 mL bag fits but makes more than 60 mL
    with pytest.raises(DoseError) as error:
        flat(100, IPILIMUMAB, bag_sizes_ml=(D(50), D(250)), max_final_volume_ml=D(60))
    assert error.value.field == "final_volume"
    assert "the smallest bag within 1-2 mg/mL, 50 mL, makes 70.0 mL" in error.value.reason


# --- cell products --------------------------------------------------------------------------------------------------

AXI_CEL = {"cells_per_kg": 2 * 10**6, "cells_min": None, "cells_max": 2 * 10**8}


def test_axicabtagene_at_70_kg():
    dose = cell_dose(**AXI_CEL, weight_kg=D(70))
    assert dose == CellDose(
        target_cells=140_000_000,
        min_cells=None,
        max_cells=200_000_000,
        note="2 × 10⁶ cells/kg × 70 kg = 1.4 × 10⁸ cells",
        cells_per_kg=2_000_000,
        weight_kg=D(70),
    )
    assert dose.as_record() == {
        "cells_per_kg": "2000000",
        "weight_kg": "70",
        "target_cells": "140000000",
        "min_cells": "",
        "max_cells": "200000000",
        "note": "2 × 10⁶ cells/kg × 70 kg = 1.4 × 10⁸ cells",
    }


def test_axicabtagene_at_120_kg_is_capped():
    dose = cell_dose(**AXI_CEL, weight_kg=D(120))
    assert dose.target_cells == 200_000_000
    assert dose.note == "2 × 10⁶ cells/kg × 120 kg = 2.4 × 10⁸ cells, capped at the maximum 2 × 10⁸"
    assert cell_dose(**AXI_CEL, weight_kg=D(100)).target_cells == 200_000_000  # exactly the maximum: not capped
    assert "capped" not in cell_dose(**AXI_CEL, weight_kg=D(100)).note


def test_a_per_kg_cell_dose_rounds_down_to_whole_cells():
    dose = cell_dose(cells_per_kg=3, cells_min=None, cells_max=None, weight_kg=D("70.5"))
    assert dose.target_cells == 211  # 211.5: never more than prescribed
    assert dose.note == "3 cells/kg × 70.5 kg = 211 cells"


def test_a_per_kg_cell_dose_with_a_minimum():
    dose = cell_dose(cells_per_kg=2 * 10**6, cells_min=10**8, cells_max=2 * 10**8, weight_kg=D(70))
    assert (dose.target_cells, dose.min_cells, dose.max_cells) == (140_000_000, 10**8, 2 * 10**8)
    assert (
        dose.note
        == "2 × 10⁶ cells/kg × 70 kg = 1.4 × 10⁸ cells; the bag must hold at least 1 × 10⁸ and at most 2 × 10⁸ cells"
    )


def test_a_flat_cell_dose_is_a_range():
    dose = cell_dose(cells_per_kg=None, cells_min=10**8, cells_max=25 * 10**7, weight_kg=None)
    assert dose == CellDose(
        None, 10**8, 25 * 10**7, "flat dose: the bag must hold at least 1 × 10⁸ and at most 2.5 × 10⁸ cells"
    )
    assert dose.as_record()["target_cells"] == ""
    assert dose.as_record()["weight_kg"] == ""
    only_max = cell_dose(cells_per_kg=None, cells_min=None, cells_max=5 * 10**8, weight_kg=D(80))
    assert only_max.note == "flat dose: the bag must hold at most 5 × 10⁸ cells"
    assert only_max.weight_kg == D(80)
    only_min = cell_dose(cells_per_kg=None, cells_min=10**8, cells_max=None, weight_kg=None)
    assert only_min.note == "flat dose: the bag must hold at least 1 × 10⁸ cells"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"weight_kg": None}, "weight_kg", "a cells/kg dose needs the patient's weight"),
        ({"weight_kg": D("0.4")}, "weight_kg", "0.4 kg is outside 0.5-500 kg"),
        ({"cells_per_kg": 0}, "cells_per_kg", "must be more than 0 (got 0)"),
        ({"cells_per_kg": -5}, "cells_per_kg", "must be more than 0 (got -5)"),
        ({"cells_max": 0}, "cells_max", "must be more than 0 (got 0)"),
        ({"cells_min": 0}, "cells_min", "must be more than 0 (got 0)"),
        ({"cells_min": 1.5}, "cells_min", "not a whole number of cells: 1.5"),
        ({"cells_per_kg": True}, "cells_per_kg", "not a whole number of cells: True"),
        ({"cells_min": 3 * 10**8}, "cells_min", "the minimum 3 × 10⁸ is above the maximum 2 × 10⁸"),
        (
            {"cells_per_kg": None, "cells_max": None},
            "cells_per_kg",
            "a cell dose needs cells per kg or a range of cells",
        ),
    ],
)
def test_invalid_cell_doses_name_the_field(changes, field, reason):
    with pytest.raises(DoseError) as error:
        cell_dose(**{**AXI_CEL, "weight_kg": D(70), **changes})
    assert (error.value.field, error.value.reason) == (field, reason)


def test_a_cell_range_of_one_value_is_allowed():
    dose = cell_dose(cells_per_kg=None, cells_min=10**8, cells_max=10**8, weight_kg=None)
    assert (dose.min_cells, dose.max_cells) == (10**8, 10**8)


@pytest.mark.parametrize(
    ("certified", "problem"),
    [
        (10**8, None),  # the minimum itself
        (14 * 10**7, None),
        (2 * 10**8, None),  # the maximum itself
        (
            10**8 - 1,
            "the certificate of analysis gives 9.9999999 × 10⁷ viable CAR+ cells in the bag, "
            "below the minimum of 1 × 10⁸",
        ),
        (
            2 * 10**8 + 10**6,
            "the certificate of analysis gives 2.01 × 10⁸ viable CAR+ cells in the bag, above the maximum of 2 × 10⁸",
        ),
    ],
)
def test_the_certificate_of_analysis_must_lie_in_the_range(certified, problem):
    dose = cell_dose(cells_per_kg=2 * 10**6, cells_min=10**8, cells_max=2 * 10**8, weight_kg=D(70))
    assert check_cell_product(dose=dose, certified_cells=certified) == problem


def test_a_missing_bound_does_not_apply_to_the_certificate():
    no_min = cell_dose(**AXI_CEL, weight_kg=D(70))
    assert check_cell_product(dose=no_min, certified_cells=1) is None
    assert check_cell_product(dose=no_min, certified_cells=2 * 10**8 + 1) is not None
    no_max = cell_dose(cells_per_kg=None, cells_min=10**8, cells_max=None, weight_kg=None)
    assert check_cell_product(dose=no_max, certified_cells=10**12) is None
    with pytest.raises(DoseError) as error:
        check_cell_product(dose=no_max, certified_cells=0)
    assert error.value.field == "certified_cells"


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "1"),
        (9999, "9999"),
        (10_000, "1 × 10⁴"),
        (140_000_000, "1.4 × 10⁸"),
        (123_456_789, "1.23456789 × 10⁸"),  # exact: a rounded number could hide a difference
        (10**10, "1 × 10¹⁰"),
        (2_500_000, "2.5 × 10⁶"),
    ],
)
def test_format_cells(count, text):
    assert format_cells(count) == text


# --- pinned by mutation testing (docs/mutation-testing.md) -----------------------------------------------------------


def brute_force_cover(dose: int, sizes: tuple[int, ...]) -> tuple[int, int]:
    """(least total >= dose, fewest vials for it), trying every count of every vial up to dose + the largest vial
    (whole largest vials always cover the dose below that) and at most MAX_VIALS vials."""
    limit = dose + max(sizes)
    best: tuple[int, int] | None = None

    def combine(index: int, total: int, count: int) -> None:
        nonlocal best
        if index == len(sizes):
            if 0 < count <= MAX_VIALS and total >= dose and (best is None or (total, count) < best):
                best = (total, count)
            return
        extra = 0
        while total + extra * sizes[index] <= limit:
            combine(index + 1, total + extra * sizes[index], count + extra)
            extra += 1

    combine(0, 0, 0)
    assert best is not None
    return best


@pytest.mark.parametrize("sizes", [(12, 11, 9, 8), (50, 200), (40, 100, 240), (7, 5, 3), (120, 500), (25, 60, 95)])
def test_vials_match_a_brute_force_search(sizes):
    undiluted = drug(10, sizes, None, None)
    for dose in range(1, 260, 7):
        result = flat(dose, undiluted)
        total, count = brute_force_cover(dose, sizes)
        assert (result.vial_total_mg, result.vial_count) == (D(total), count), dose


def test_a_single_concentration_is_a_range():
    result = flat(100, {**IPILIMUMAB, "concentration_min": D(2)}, bag_sizes_ml=(D(30),))  # 100 / 50 = 2 exactly
    assert result.diluent_bag_ml == D(30)


def test_bag_sizes_without_a_concentration_range_are_recorded_when_valid():
    assert per_kg(3, 70, NIVOLUMAB).bag_sizes_ml == (D(500), D(250), D(100), D(50))
    assert per_kg(3, 70, NIVOLUMAB, bag_sizes_ml=()).bag_sizes_ml == ()  # invalid, and not needed: no error


def test_a_capped_dose_is_not_refused_for_the_vials_its_calculated_dose_would_need():
    result = per_kg(1000, 80, DURVALUMAB, max_dose_mg=D(1500))  # 80 000 mg calculated (a unit mistake, capped)
    assert result.dose_mg == D(1500)
    assert result.vials == ((D(500), 3),)
    assert result.rounding_note == "capped at the maximum dose 1500 mg (calculated 80000.0 mg)"


def test_rounding_down_when_no_total_above_is_within_max_vials():
    # 20000.04 mg from 200 mg vials: 101 vials (20200 mg) are refused, so only 100 x 200 mg is a candidate
    result = per_kg("250.0005", 80, drug(10, (200,), None, None))
    assert result.calculated_mg == D("20000.0400")
    assert result.dose_mg == D(20000)
    assert (
        result.rounding_note
        == "rounded down from 20000.0 mg to 20000 mg = 100 x 200 mg (0.0 % difference, within 10 %)"
    )


@pytest.mark.parametrize(
    ("result", "field", "value"),
    [
        # every rounding is half up: 24.05 mL -> 24.1, not 24.0 (half even)
        (lambda: flat("240.5", NIVOLUMAB), "volume_to_draw_ml", "24.1"),
        # 2.345 mg/mL undiluted -> 2.35
        (lambda: flat(10, drug("2.345", (10,), None, None)), "final_concentration_mg_per_ml", "2.35"),
        # 90 mg in 50 + 30 mL = 1.125 mg/mL -> 1.13
        (lambda: flat(90, drug(3, (10,), 1, 2), bag_sizes_ml=(D(50),)), "final_concentration_mg_per_ml", "1.13"),
        # 20 mL + 50.25 mL = 70.25 mL -> 70.3
        (lambda: flat(100, IPILIMUMAB, bag_sizes_ml=(D("50.25"),)), "final_volume_ml", "70.3"),
    ],
)
def test_values_round_half_up(result, field, value):
    assert str(getattr(result(), field)) == value


def test_the_rounding_percentage_rounds_half_up():
    result = per_kg(2, 100, drug(10, ("204.5",), None, None))  # 200 mg -> 204.5 mg: 2.25 %
    assert result.rounding_note == "rounded up from 200.0 mg to 204.5 mg = 1 x 204.5 mg (2.3 % difference, within 10 %)"


def test_concentration_messages_round_half_up_and_the_fitting_volumes_inwards():
    with pytest.raises(DoseError) as error:
        flat(90, drug(3, (10,), "1.2", 2), bag_sizes_ml=(D(50),))  # 1.125 mg/mL
    assert error.value.reason.startswith("90.0 mg in a 50 mL bag gives 1.13 mg/mL;")
    with pytest.raises(DoseError) as error:
        flat(100, drug(25, (100,), "1.5", 3), bag_sizes_ml=(D(10), D(100)))
    assert error.value.reason == (
        "100.0 mg in any bag of 10-100 mL gives 0.96-7.14 mg/mL; the label range is 1.5-3 mg/mL: none fits "
        "(too concentrated in 10 mL; too dilute in 100 mL); it would need a final volume of 33.4-66.6 mL, "
        "of which 4.0 mL is drug"
    )  # 100 / 3 = 33.33 up to 33.4, 100 / 1.5 = 66.67 down to 66.6: both inside the range


def test_a_drug_exactly_at_the_minimum_concentration():
    with pytest.raises(DoseError) as error:
        flat(10, drug(1, (10,), 1, 2), bag_sizes_ml=(D(50),))  # any diluent takes it below 1 mg/mL
    assert error.value.reason.endswith("it would need a final volume of 5.0-10.0 mL, of which 10.0 mL is drug")


def test_a_minimum_only_range_names_the_largest_final_volume():
    with pytest.raises(DoseError) as error:
        flat(10, {**PEMBROLIZUMAB, "concentration_max": None})
    assert error.value.reason == (
        "10.0 mg in any bag of 50-500 mL gives 0.02-0.20 mg/mL; the label range is at least 1 mg/mL: none fits "
        "(too dilute in 50, 100, 250 and 500 mL); it would need a final volume of at most 10.0 mL, of which 0.4 mL "
        "is drug"
    )


def test_the_undiluted_hint_at_exactly_the_maximum_volume():
    with pytest.raises(DoseError) as error:
        flat(240, NIVOLUMAB_DILUTED, max_final_volume_ml=D(24))  # 24 mL undiluted would fit, but is not allowed
    assert error.value.reason.endswith("makes 74.0 mL; the label does not allow giving it undiluted")


def test_floats_go_through_their_shortest_text():
    result = calculate_dose(**dose_kwargs(weight_kg=80.1))
    assert result.weight_kg == D("80.1")
    assert result.calculated_mg == D("240.3")


def test_cell_dose_record_and_weight_checks():
    dose = cell_dose(cells_per_kg=2 * 10**6, cells_min=10**8, cells_max=2 * 10**8, weight_kg=D(70))
    assert dose.as_record() == {
        "cells_per_kg": "2000000",
        "weight_kg": "70",
        "target_cells": "140000000",
        "min_cells": "100000000",
        "max_cells": "200000000",
        "note": dose.note,
    }
    with pytest.raises(DoseError) as error:
        cell_dose(**AXI_CEL, weight_kg="heavy")  # type: ignore[arg-type]
    assert (error.value.field, error.value.reason) == ("weight_kg", "not a number: 'heavy'")


def test_a_finer_dose_and_volume_step_keeps_a_fraction_of_a_mg():
    """Epcoritamab's 0.16 mg step-up dose (diluted to 0.16 mg/mL) is 0.16 mg and 1.00 mL, not 0.2 mg; the steps
    come back with their own places whatever the caller's (a column's 0.010 is 0.01)."""
    dose = calculate_dose(
        basis=DoseBasis.FLAT, amount=D("0.16"), weight_kg=D(70), height_cm=D(170), strength_mg_per_ml=D("0.16"),
        vial_contents_mg=[D(4)], concentration_min=None, concentration_max=None, rounding_tolerance_percent=None,
        dose_step_mg=D("0.010"), volume_step_ml=D("0.01"),
    )  # fmt: skip
    assert format(dose.dose_mg, "f") == "0.16"
    assert format(dose.volume_to_draw_ml, "f") == "1.00"
    assert dose.as_record()["dose_step_mg"] == "0.01"
    coarse = calculate_dose(
        basis=DoseBasis.FLAT, amount=D("0.16"), weight_kg=D(70), height_cm=D(170), strength_mg_per_ml=D("0.16"),
        vial_contents_mg=[D(4)], concentration_min=None, concentration_max=None, rounding_tolerance_percent=None,
    )  # fmt: skip
    assert coarse.dose_mg == D("0.2")


@pytest.mark.parametrize(("field", "value"), [("dose_step_mg", D("0.05")), ("volume_step_ml", D("0.001"))])
def test_an_unknown_measuring_step_is_refused(field, value):
    with pytest.raises(DoseError) as refused:
        calculate_dose(
            basis=DoseBasis.FLAT, amount=D(48), weight_kg=D(70), height_cm=D(170), strength_mg_per_ml=D(60),
            vial_contents_mg=[D(48)], concentration_min=None, concentration_max=None, **{field: value},
        )  # fmt: skip
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("dose_step_mg", D("0.05"), "the dose step is one of 0.1, 0.01, 0.001 mg"),
        ("dose_step_mg", D(1), "the dose step is one of 0.1, 0.01, 0.001 mg"),
        ("dose_step_mg", D(0), "must be more than 0 (got 0)"),
        ("dose_step_mg", "fine", "not a number: 'fine'"),
        ("volume_step_ml", D("0.001"), "the volume step is one of 0.1, 0.01 mL"),
        ("volume_step_ml", D(1), "the volume step is one of 0.1, 0.01 mL"),
        ("volume_step_ml", D("-0.1"), "must be more than 0 (got -0.1)"),
        ("volume_step_ml", None, "not a number: None"),
    ],
)
def test_each_measuring_step_refusal_names_its_field_and_reason(field, value, reason):
    with pytest.raises(DoseError) as refused:
        flat(48, NIVOLUMAB, **{field: value})
    assert (refused.value.field, refused.value.reason) == (field, reason)


def test_a_volume_step_given_with_more_places_comes_back_with_its_own():
    dose = flat("0.16", drug("0.16", (4,), None, None), dose_step_mg=D("0.01"), volume_step_ml=D("0.010"))
    record = dose.as_record()
    steps_and_volumes = (record["volume_step_ml"], record["volume_to_draw_ml"], record["final_volume_ml"])
    assert steps_and_volumes == ("0.01", "1.00", "1.00")
    assert format(dose.volume_to_draw_ml, "f") == "1.00"
    assert format(dose.final_volume_ml, "f") == "1.00"
    assert format(dose.volume_step_ml, "f") == "0.01"


def test_the_finest_dose_step_and_a_volume_too_small_for_the_finer_syringe():
    dose = flat("0.0125", drug("0.1", (4,), None, None), dose_step_mg=D("0.001"), volume_step_ml=D("0.01"))
    assert format(dose.dose_mg, "f") == "0.013"  # half up at the third place
    assert format(dose.volume_to_draw_ml, "f") == "0.13"
    with pytest.raises(DoseError) as refused:
        flat("0.004", drug(10, (40,), None, None), dose_step_mg=D("0.001"), volume_step_ml=D("0.01"))
    assert (refused.value.field, refused.value.reason) == (
        "amount",
        "0.004 mg is less than 0.01 mL of 10 mg/mL: too small to measure",
    )


def test_the_vial_count_check_uses_the_dose_step():
    """100.04 mg to 0.01 mg needs 101 vials of 1 mg (refused); to 0.1 mg it would be 100.0 mg and 100 vials."""
    with pytest.raises(DoseError) as refused:
        flat("100.04", drug(1, (1,), None, None), dose_step_mg=D("0.01"), volume_step_ml=D("0.01"))
    assert (refused.value.field, refused.value.reason) == (
        "amount",
        "100.04 mg would need at least 101 vials of 1 mg (more than 100): check the dose and its unit",
    )
    assert flat("100.04", drug(1, (1,), None, None)).dose_mg == D(100)
