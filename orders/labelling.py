from __future__ import annotations

from decimal import Decimal

from orders.choices import Storage
from orders.labels import PreparationLabel
from orders.models import Preparation
from orders.selectors import dose_step


def _name(user: object) -> str:
    return (getattr(user, "get_full_name", lambda: "")() or getattr(user, "username", "")) if user else ""


def diluent_label(product: str, volume_ml: Decimal) -> str:
    """The diluent as the label names it: its product and volume, the volume once ("0.9% sodium chloride 50 mL",
    never "… 50 mL 50 mL" when the product's name already says it)."""
    name, volume = product.strip(), f"{volume_ml:.0f} mL"
    return name if name.endswith(volume) else f"{name} {volume}"


def preparation_label(prep: Preparation) -> PreparationLabel:
    """The bag label of a verified preparation; a cell product shows its cells, the certificate's bag volume
    and its chain-of-identity ID instead of mg."""
    course = prep.dose.course
    patient, drug = course.patient, course.regimen.drug
    assert prep.beyond_use_at is not None
    volume: Decimal | None
    if drug.cell_therapy:
        volume, diluent_text, cells = prep.coa_bag_volume_ml, "", prep.coa_cells
        assert cells is not None
    elif drug.intralesional:  # PFU/mL and the visit's mL, never mg
        volume, diluent_text, cells = prep.volume_ml_planned, "Undiluted (syringes per lesion)", None
    else:
        diluent = next((c for c in prep.components.all() if c.kind == "diluent"), None)
        volume, cells = prep.final_volume_ml, None
        diluent_text = diluent_label(diluent.product, diluent.volume_ml) if diluent else "Undiluted"
    assert volume is not None
    step = dose_step(prep.dose)
    premedication = drug.premedication
    if step is not None and step.premedication_required:  # the step's label text, whatever the drug's says
        premedication = f"step-up dose {prep.dose.number}: {step.premedication}"
    return PreparationLabel(
        preparation_id=prep.code,
        family_name=patient.family_name,
        given_name=patient.given_name,
        mrn=patient.mrn,
        birth_date=patient.birth_date,
        drug=drug.name,
        dose_mg=None if drug.cell_therapy or drug.intralesional else prep.dose_mg,
        volume_ml=volume,
        concentration_mg_per_ml=None
        if drug.cell_therapy or drug.intralesional or prep.dose.bag_hours
        else prep.concentration_mg_per_ml,
        diluent=diluent_text,
        beyond_use=prep.beyond_use_at,
        storage="Refrigerate 2-8 °C" if prep.storage == Storage.REFRIGERATED else "Room temperature",
        preparer=_name(prep.prepared_by),
        verifier=_name(prep.verified_by),
        infusion_minutes=prep.dose.bag_hours * 60 if prep.dose.bag_hours else course.regimen.infusion_minutes,
        filter_note=drug.filter_note,
        hazardous=drug.hazardous,
        cells=cells,
        cells_unit="CAR+ viable T cells" if "CAR" in drug.target.upper() else "viable cells",
        chain_of_identity=(prep.bag_identity if drug.fresh_product else course.chain_of_identity)
        if drug.cell_therapy
        else "",
        route="Intralesional injection" if drug.intralesional else "IV infusion",
        pfu_per_ml=prep.concentration_pfu_per_ml if drug.intralesional else None,
        infusion_end_by=prep.infusion_end_by,
        protect_from_light=drug.protect_from_light,
        biosafety=drug.biosafety_level,
        premedication=premedication,
        bag_hours=prep.dose.bag_hours,
    )
