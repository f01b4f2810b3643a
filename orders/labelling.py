from __future__ import annotations

from orders.choices import Storage
from orders.labels import PreparationLabel
from orders.models import Preparation


def _name(user: object) -> str:
    return (getattr(user, "get_full_name", lambda: "")() or getattr(user, "username", "")) if user else ""


def preparation_label(prep: Preparation) -> PreparationLabel:
    course = prep.dose.course
    patient, drug = course.patient, course.regimen.drug
    assert prep.beyond_use_at is not None
    diluent = next((c for c in prep.components.all() if c.kind == "diluent"), None)
    return PreparationLabel(
        preparation_id=prep.code,
        family_name=patient.family_name,
        given_name=patient.given_name,
        mrn=patient.mrn,
        birth_date=patient.birth_date,
        drug=drug.name,
        dose_mg=prep.dose_mg,
        volume_ml=prep.final_volume_ml,
        concentration_mg_per_ml=prep.concentration_mg_per_ml,
        diluent=f"{diluent.product} {diluent.volume_ml:.0f} mL" if diluent else "Undiluted",
        beyond_use=prep.beyond_use_at,
        storage="Refrigerate 2-8 °C" if prep.storage == Storage.REFRIGERATED else "Room temperature",
        preparer=_name(prep.prepared_by),
        verifier=_name(prep.verified_by),
        infusion_minutes=course.regimen.infusion_minutes,
        filter_note=drug.filter_note,
        hazardous=drug.hazardous,
    )
