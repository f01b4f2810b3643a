"""Input of the orders pages: each form validates what the browser sent; the services decide the rest."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders.cells import MAX_RESCUE_DOSES
from orders.choices import (
    CoiStep,
    ComponentKind,
    CompoundingCategory,
    DecisionKind,
    ExposureKind,
    PremedicationClass,
    Storage,
)
from orders.gs1 import VialScan, VialScanError, parse_vial_scan
from orders.services.preparations import ComponentInput

COMPONENT_ROWS = 6
WHEN = {"invalid": "Give a date and time (YYYY-MM-DD HH:MM)."}
NUMBER = {"invalid": "A number."}


def fill_from_scan(data: Any, scan_field: str, lot_field: str, expiry_field: str) -> tuple[VialScan | None, str]:
    """Read the vial barcode in ``data[scan_field]`` (a mutable copy of the POST) into the empty lot and expiry
    fields: (the scan or None, why it cannot be used or ""). A typed value that differs stays, and is the error."""
    text = data.get(scan_field) or ""
    if not text.strip():
        return None, ""
    try:
        scan = parse_vial_scan(text)
    except VialScanError as error:
        return None, error.reason
    problem = ""
    for name, value in ((lot_field, scan.lot), (expiry_field, scan.expiry.isoformat())):
        typed = (data.get(name) or "").strip()
        if not typed:
            data[name] = value
        elif typed != value:
            problem = f"The barcode says {value} but {typed} was typed: check the vial."
    return scan, problem


def expired_problem(scan: VialScan | None) -> str:
    if scan is not None and scan.expiry < timezone.localdate():
        return f"Vial lot {scan.lot} expired on {scan.expiry:%Y-%m-%d}: do not use it."
    return ""


class PreparationForm(forms.Form):
    """The bag's components (rows ``product-0``, ``lot-0``, ... as the scanner fills them), category, storage and
    the first puncture.

    A row's ``scan-0`` takes the vial's GS1 barcode (orders/gs1.py): its lot and expiry fill the row's empty fields
    (a typed value that differs is an error, never overwritten), so the page shows them again even without
    JavaScript. Its GTIN is shown, not matched: the catalogue holds no GTINs, so the product is chosen by the
    technician, never guessed. An expired vial is refused on the scan field; the service refuses one that expires
    before the beyond-use time."""

    category = forms.ChoiceField(choices=CompoundingCategory.choices, initial=CompoundingCategory.CATEGORY_1)
    storage = forms.ChoiceField(choices=Storage.choices, initial=Storage.REFRIGERATED)
    punctured_at = forms.DateTimeField(required=False, error_messages=WHEN)
    closed_system_device = forms.CharField(required=False, max_length=200)
    bag_volume_ml = forms.DecimalField(
        required=False, min_value=Decimal("0.1"), max_value=Decimal(1000), max_digits=6, decimal_places=1,
        error_messages=NUMBER,
    )  # fmt: skip

    # A service names a row's field components[0].expiry; the form calls it expiry-0.
    service_fields = {
        f"components[{i}].{service}": f"{name}-{i}"
        for i in range(COMPONENT_ROWS)
        for service, name in (("product", "product"), ("lot", "lot"), ("expiry", "expiry"), ("volume_ml", "volume"))
    }

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        self.scans: dict[int, VialScan] = {}
        self.scan_errors: dict[int, str] = {}
        if data is not None:
            data = self._read_scans(data)
        super().__init__(data, *args, **kwargs)
        for i in range(COMPONENT_ROWS):
            self.fields[f"kind-{i}"] = forms.CharField(required=False)
            self.fields[f"scan-{i}"] = forms.CharField(required=False, max_length=200)
            self.fields[f"product-{i}"] = forms.CharField(required=False, max_length=200)
            self.fields[f"lot-{i}"] = forms.CharField(required=False, max_length=60)
            self.fields[f"expiry-{i}"] = forms.DateField(
                required=False, error_messages={"invalid": "Scan or type the expiry date (YYYY-MM-DD)."}
            )
            self.fields[f"volume-{i}"] = forms.DecimalField(
                required=False, error_messages={"invalid": "Volume must be a number."}
            )

    def _read_scans(self, data: Any) -> Any:
        """A copy of the posted data with each scanned row's empty lot and expiry filled from its barcode."""
        data = data.copy()
        for i in range(COMPONENT_ROWS):
            scan, error = fill_from_scan(data, f"scan-{i}", f"lot-{i}", f"expiry-{i}")
            if scan is not None:
                self.scans[i] = scan
            if error:
                self.scan_errors[i] = error
        return data

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for i, reason in self.scan_errors.items():
            self.add_error(f"scan-{i}", reason)
        for i, scan in self.scans.items():
            if expired := expired_problem(scan):
                self.add_error(f"scan-{i}", expired)
            if not (data.get(f"product-{i}") or "").strip() and f"product-{i}" not in self.errors:
                self.add_error(
                    f"product-{i}",
                    f"Choose the product of GTIN {scan.gtin}: no product in the catalogue carries this GTIN.",
                )
        components = []
        for i in range(COMPONENT_ROWS):
            product = (data.get(f"product-{i}") or "").strip()
            if not product:
                continue
            expiry = data.get(f"expiry-{i}")
            if expiry is None:
                if f"expiry-{i}" not in self.errors:
                    self.add_error(f"expiry-{i}", "Scan or type the expiry date (YYYY-MM-DD).")
                continue
            kind = ComponentKind.DILUENT if data.get(f"kind-{i}") == ComponentKind.DILUENT else ComponentKind.VIAL
            volume = data.get(f"volume-{i}") or Decimal(0)
            components.append(ComponentInput(kind, product, data.get(f"lot-{i}") or "", expiry, volume))
        data["components"] = components
        return data


def _whole(value: str) -> int:
    text = (value or "").replace(" ", "").replace(",", "").replace("_", "")
    if not text.isdigit():
        raise ValidationError("A whole number.")
    return int(text)


class CellReceiveForm(forms.Form):
    step = forms.CharField(required=False)
    coi_scanned = forms.CharField(required=False)
    coa_cells = forms.CharField(error_messages={"required": "A whole number."})
    coa_bag_volume_ml = forms.DecimalField(error_messages={"required": "A number.", **NUMBER})
    coa_lot = forms.CharField(required=False)

    def clean_coa_cells(self) -> int:
        return _whole(self.cleaned_data["coa_cells"])


class CellThawForm(forms.Form):
    step = forms.CharField(required=False)
    coi_scanned = forms.CharField(required=False)
    thawed_at = forms.DateTimeField(required=False, error_messages=WHEN)


class FreshCollectForm(forms.Form):
    """Sipuleucel-T: this dose's leukapheresis and its bag's own chain-of-identity ID."""

    step = forms.CharField(required=False)
    bag_identity = forms.CharField(required=False)
    collected_at = forms.DateTimeField(error_messages={"required": WHEN["invalid"], **WHEN})


class FreshReceiveForm(CellReceiveForm):
    """Sipuleucel-T: the bag's receipt with its expiry date and time from the product label."""

    expires_at = forms.DateTimeField(required=False, error_messages=WHEN)


class VirusThawForm(forms.Form):
    """T-VEC: the lesions' longest dimensions (cm, separated by commas or spaces), the vial and the thaw. The vial's
    GS1 barcode (``vial_scan``) fills its lot and expiry as on the preparation form."""

    step = forms.CharField(required=False)
    lesions_cm = forms.CharField(error_messages={"required": "Give each lesion's longest dimension in cm."})
    vial_scan = forms.CharField(required=False, max_length=200)
    vial_lot = forms.CharField(required=False)
    vial_expiry = forms.DateField(error_messages={"required": "The vial's expiry (YYYY-MM-DD).",
                                                  "invalid": "The vial's expiry (YYYY-MM-DD)."})  # fmt: skip
    thawed_at = forms.DateTimeField(required=False, error_messages=WHEN)

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        self.scan: VialScan | None = None
        self.scan_error = ""
        if data is not None:
            data = data.copy()
            self.scan, self.scan_error = fill_from_scan(data, "vial_scan", "vial_lot", "vial_expiry")
        super().__init__(data, *args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if problem := self.scan_error or expired_problem(self.scan):
            self.add_error("vial_scan", problem)
        return data

    def clean_lesions_cm(self) -> list[Decimal]:
        parts = self.cleaned_data["lesions_cm"].replace(",", " ").split()
        try:
            return [Decimal(p) for p in parts]
        except ArithmeticError:
            raise ValidationError("Numbers in cm, separated by commas or spaces (e.g. 6, 2.5, 0.4).") from None


HANDOFF_STEPS = [(step.value, step.label) for step in (CoiStep.COLLECTION, CoiStep.SHIPMENT)]
DOSES = {"required": "A whole number of doses.", "invalid": "A whole number of doses."}


class HandoffForm(forms.Form):
    """A chain-of-identity hand-off of a frozen cell product recorded on its page: collection or shipment (receipt
    and thaw are recorded on the preparation, the bedside check is the administration scan)."""

    step = forms.ChoiceField(
        choices=HANDOFF_STEPS,
        error_messages={"invalid_choice": "Collection or shipment: receipt and thaw are recorded on the preparation."},
    )
    scanned = forms.CharField(max_length=40, error_messages={"required": "Scan the chain-of-identity label."})
    note = forms.CharField(required=False, max_length=2000)


class RescueCheckForm(forms.Form):
    """Pharmacy confirms the rescue doses on hand for the patient (the count the drug requires is the catalogue's)."""

    doses_on_hand = forms.IntegerField(
        min_value=0, max_value=MAX_RESCUE_DOSES,
        error_messages={**DOSES, "min_value": "At least 0 doses.",
                        "max_value": f"At most {MAX_RESCUE_DOSES} doses."},
    )  # fmt: skip
    note = forms.CharField(required=False, max_length=2000)


class ExclusionForm(forms.Form):
    not_pregnant = forms.BooleanField(required=False)
    not_immunocompromised = forms.BooleanField(required=False)


class ExposureForm(forms.Form):
    drug = forms.IntegerField(error_messages={"required": "Choose the product.", "invalid": "Choose the product."})
    person = forms.CharField(required=False, max_length=200)
    occurred_at = forms.DateTimeField(error_messages={"required": WHEN["invalid"], **WHEN})
    kind = forms.ChoiceField(choices=ExposureKind.choices)
    what = forms.CharField(required=False, max_length=4000)
    action_taken = forms.CharField(required=False, max_length=4000)


class VerifyForm(forms.Form):
    password = forms.CharField(required=False, strip=False)
    method = forms.CharField(required=False)
    measured = forms.DecimalField(required=False, error_messages=NUMBER)
    coi_label = forms.CharField(required=False)
    bag_intact = forms.TypedChoiceField(
        required=False, choices=[("yes", "Yes"), ("no", "No")], coerce=lambda v: v == "yes", empty_value=None
    )

    def __init__(self, *args: Any, cell: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cell = cell

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.cell and "measured" not in self.errors and data.get("measured") is None:
            self.add_error("measured", "A number.")
        return data


class AdministerForm(forms.Form):
    step = forms.CharField(required=False)
    wristband = forms.CharField(required=False)
    label = forms.CharField(required=False)
    coi_label = forms.CharField(required=False)
    premedication_given_at = forms.DateTimeField(required=False, error_messages=WHEN)
    premedication_note = forms.CharField(required=False, strip=False)
    premedication_classes = forms.MultipleChoiceField(required=False, choices=PremedicationClass.choices)


class DoseDecisionForm(forms.Form):
    """Override a withheld dose, or (two oncologists) continue a discontinued one."""

    dose = forms.IntegerField(min_value=1)
    decision = forms.ChoiceField(choices=DecisionKind.choices, required=False)
    reason = forms.CharField(required=False, max_length=2000)
    cosigner = forms.CharField(required=False, max_length=150)
    cosigner_password = forms.CharField(required=False, strip=False)


class CourseStopForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)


class CourseForm(forms.Form):
    """A regimen, or a therapy plan (its regimens in phases): exactly one of the two."""

    regimen = forms.IntegerField(required=False, error_messages={"invalid": "Choose a regimen."})
    plan = forms.IntegerField(required=False, error_messages={"invalid": "Choose a plan."})
    starts_at = forms.DateTimeField(error_messages={"required": "Give a start date and time.", **WHEN})
    chain_of_identity = forms.CharField(required=False, max_length=100)
    no_round_up = forms.BooleanField(required=False)
    bag_hours = forms.IntegerField(
        required=False, min_value=1, max_value=720, error_messages={"invalid": "A whole number of hours."}
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        regimen, plan = data.get("regimen"), data.get("plan")
        if "regimen" in self.errors or "plan" in self.errors:
            return data
        if regimen is None and plan is None:
            self.add_error("regimen", "Choose a regimen or a plan.")
        elif regimen is not None and plan is not None:
            self.add_error("plan", "Choose a regimen or a plan, not both.")
        return data


ASSESSED = [("", "Not assessed"), ("false", "No"), ("true", "Yes")]


class ToleranceCheckForm(forms.Form):
    """The bedside tolerance check (orders/tolerance.py): numbers left empty and "Not assessed" are not recorded,
    which keeps the check pending."""

    systolic_bp_mmhg = forms.IntegerField(label="Systolic blood pressure (mmHg)", required=False, min_value=0)
    target_systolic_mmhg = forms.IntegerField(label="Target systolic set on admission (mmHg)", required=False,
                                              min_value=0)  # fmt: skip
    vasopressors = forms.NullBooleanField(label="On vasopressors", required=False,
                                          widget=forms.RadioSelect(choices=ASSESSED))  # fmt: skip
    heart_rate_bpm = forms.IntegerField(label="Heart rate (/min)", required=False, min_value=0)
    new_arrhythmia = forms.NullBooleanField(label="New arrhythmia or ischaemic ECG", required=False,
                                            widget=forms.RadioSelect(choices=ASSESSED))  # fmt: skip
    spo2_percent = forms.IntegerField(label="SpO2 (%)", required=False, min_value=0)
    oxygen_l_min = forms.DecimalField(label="Oxygen (L/min, 0 on room air)", required=False, max_digits=4,
                                      decimal_places=1, min_value=0)  # fmt: skip
    urine_ml_per_kg_h = forms.DecimalField(label="Urine output (mL/kg/h)", required=False, max_digits=4,
                                           decimal_places=2, min_value=0)  # fmt: skip
    creatinine_mg_dl = forms.DecimalField(label="Creatinine (mg/dL)", required=False, max_digits=4,
                                          decimal_places=2, min_value=0)  # fmt: skip
    mental_status_changed = forms.NullBooleanField(label="Mental status changed", required=False,
                                                   widget=forms.RadioSelect(choices=ASSESSED))  # fmt: skip
