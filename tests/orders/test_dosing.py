"""orders.dosing: BSA, dose, vial rounding, vials, bag, validation. Pure functions: no database."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from orders.dosing import DoseBasis, DoseCalculation, DoseError, bsa_mosteller, calculate_dose


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


@pytest.mark.parametrize(("height", "weight", "field"), [("29.9", "70", "height_cm"), ("170", "500.1", "weight_kg")])
def test_bsa_rejects_implausible_values(height, weight, field):
    with pytest.raises(DoseError) as error:
        bsa_mosteller(height_cm=D(height), weight_kg=D(weight))
    assert error.value.field == field


# --- calculated dose and vial rounding -----------------------------------------------------------------------------


def test_ipilimumab_3_mg_per_kg_at_80_kg():
    result = per_kg(3, 80, IPILIMUMAB)
    assert result.calculated_mg == D(240)
    assert result.dose_mg == D("240.0")
    assert not result.rounded_to_vial  # 200 mg is 16.7 % below 240 mg; 50 mg is far off
    assert result.rounding_note == "not rounded: the nearest vial, 200 mg, is 16.7 % from 240.0 mg (more than 10 %)"
    assert result.volume_to_draw_ml == D("48.0")
    assert result.vials == ((D(200), 1), (D(50), 1))
    assert result.diluent_bag_ml == D(100)  # 50 mL: 240 / 98 = 2.45 mg/mL, above 2
    assert result.final_volume_ml == D("148.0")
    assert result.final_concentration_mg_per_ml == D("1.62")


def test_nivolumab_3_mg_per_kg_at_70_kg_is_not_rounded_to_the_240_mg_vial():
    result = per_kg(3, 70, NIVOLUMAB)
    assert result.calculated_mg == D(210)
    assert result.dose_mg == D("210.0")  # |210 - 240| / 210 = 14.3 % > 10 %
    assert not result.rounded_to_vial
    assert "14.3 %" in result.rounding_note
    assert result.volume_to_draw_ml == D("21.0")


def test_3_mg_per_kg_at_65_kg_rounds_to_the_200_mg_vial():
    result = per_kg(3, 65, IPILIMUMAB)
    assert result.calculated_mg == D(195)
    assert result.dose_mg == D("200.0")  # |195 - 200| / 195 = 2.6 %
    assert result.rounded_to_vial
    assert result.rounding_note == "rounded from 195.0 mg to the 200 mg vial (2.6 % difference, within 10 %)"
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
        ("3", "80", "240", "240.0", False),  # the reference example
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


def test_rounding_uses_one_vial_size_not_combinations():
    # 245 mg: 200 + 50 = 250 is 2 % away, but only single vial sizes count; 200 mg is 18.4 % away.
    result = per_kg(5, 49, IPILIMUMAB)
    assert result.calculated_mg == D(245)
    assert result.dose_mg == D(245)
    assert not result.rounded_to_vial
    assert result.vials == ((D(200), 1), (D(50), 1))


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
    [("25", "500.0", False), ("29.9", "598.0", False), ("75", "1500.0", False), ("75.1", "1500.0", True)],
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
    # 465 mg is 7.5 % from the 500 mg vial, but the maximum is 480 mg: stays 465
    result = per_kg(15, 31, DURVALUMAB, max_dose_mg=D(480))
    assert result.calculated_mg == D(465)
    assert result.dose_mg == D(465)
    assert not result.rounded_to_vial


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
    result = per_kg(3, 70, NIVOLUMAB)
    assert result.diluent_bag_ml is None
    assert result.final_volume_ml == result.volume_to_draw_ml == D("21.0")
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
        "dose_mg": "240.0",
        "rounded_to_vial": "false",
        "rounding_note": "not rounded: the nearest vial, 200 mg, is 16.7 % from 240.0 mg (more than 10 %)",
        "strength_mg_per_ml": "5",
        "volume_to_draw_ml": "48.0",
        "vial_contents_mg": "200, 50",
        "vials": "1 x 200 mg + 1 x 50 mg",
        "vial_count": "2",
        "vial_total_mg": "250",
        "concentration_min": "1",
        "concentration_max": "2",
        "bag_sizes_ml": "500, 250, 100, 50",
        "diluent_bag_ml": "100",
        "final_volume_ml": "148.0",
        "final_concentration_mg_per_ml": "1.62",
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
    assert all(isinstance(value, str) for value in record.values())


def test_large_numbers_are_written_without_exponents():
    record = flat(D("1E+3"), {**NIVOLUMAB, "vial_contents_mg": (D("5E+2"),)}).as_record()
    assert record["amount"] == "1000"
    assert record["vial_contents_mg"] == "500"
    assert record["vials"] == "2 x 500 mg"


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
    assert result.dose_mg == D(240)
    assert isinstance(result.weight_kg, D)
    assert result.vials == ((D(200), 1), (D(50), 1))


def test_many_small_vials_are_counted_exactly():
    # 99 mg from 1 mg and 100 mg vials: 99 x 1 mg wastes nothing, so it wins over 1 x 100 mg
    result = flat(99, drug(10, (1, 100), None, None))
    assert result.vials == ((D(1), 99),)
    # 2 x 100 + 1 x 1 for 201 mg
    assert flat(201, drug(10, (1, 100), None, None)).vials == ((D(100), 2), (D(1), 1))
