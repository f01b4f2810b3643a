"""Writes to the patient register from the hospital's ADT feed (docs/interfaces.md, "ADT in").

Each event is one transaction: refused (`AdtRefusal`) means nothing of it was written. Nothing is deleted and no
clinical row is re-pointed: a merge marks the merged record `merged_into` the survivor and keeps its MRN as an alias.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.module_loading import import_string

from patients.adt import (
    CREATE_EVENTS,
    MERGE_EVENTS,
    MOVE_EVENTS,
    UPDATE_EVENTS,
    AdtEvent,
    AdtPatient,
    AdtRefusal,
    Where,
)
from patients.models import CareTeam, Patient, PatientAlias, WardCareTeam

PID_3 = Where("PID", 3)
MRG_1 = Where("MRG", 1)
PV1_3 = Where("PV1", 3)

#: Where each model field comes from in the message, for the ERR of a refused value.
_FIELD_AT = {
    "mrn": PID_3,
    "family_name": Where("PID", 5),
    "given_name": Where("PID", 5),
    "birth_date": Where("PID", 7),
    "sex": Where("PID", 8),
    "ward": PV1_3,
}


def _team_for_ward(ward: str) -> CareTeam:
    mapping = WardCareTeam.objects.select_related("care_team").filter(ward=ward).first()
    if mapping is None:
        raise AdtRefusal(204, "PV1-3 ward has no care-team mapping (admin: ward to care team mappings)", PV1_3)
    return mapping.care_team


def _locked(mrn: str) -> Patient | None:
    return Patient.objects.select_for_update().filter(mrn=mrn).first()


def _check_not_merged(patient: Patient, where: Where) -> None:
    if patient.merged_into_id is not None:
        raise AdtRefusal(205, f"{where.segment}-{where.field} names a record merged into another patient", where)


def _check_not_alias(mrn: str, where: Where) -> None:
    if PatientAlias.objects.filter(mrn=mrn).exists():
        raise AdtRefusal(205, f"{where.segment}-{where.field} is the MRN of a merged record", where)


def _save(patient: Patient, data: AdtPatient) -> None:
    """Validate and save; a model error becomes a refusal at the field's position."""
    try:
        patient.full_clean(exclude=["care_team", "merged_into"])
    except ValidationError as error:
        name, messages = next(iter(error.message_dict.items()))
        where = {"weight_kg": data.weight_at, "height_cm": data.height_at}.get(name) or _FIELD_AT.get(name)
        label = f"{where.segment}-{where.field}" if where else name
        raise AdtRefusal(102, f"{label}: {' '.join(messages)}", where) from None
    patient.save()


def _identity_conflicts(patient: Patient, data: AdtPatient) -> list[str]:
    """What of the identity the message gives differs from the record's (a second person under one MRN)."""
    conflicts = []
    if data.birth_date is not None and data.birth_date != patient.birth_date:
        conflicts.append("PID-7 birth date")
    if data.family_name and data.family_name.casefold() != patient.family_name.casefold():
        conflicts.append("PID-5 family name")
    if data.sex and data.sex != patient.sex:
        conflicts.append("PID-8 sex")
    return conflicts


def _apply_demographics(patient: Patient, data: AdtPatient) -> bool:
    """Copy what the message says onto the record; True when the weight changed."""
    for name in ("family_name", "given_name", "birth_date", "sex", "height_cm"):
        value = getattr(data, name)
        if value not in ("", None):
            setattr(patient, name, value)
    changed = data.weight_kg is not None and data.weight_kg != patient.weight_kg
    if data.weight_kg is not None:
        patient.weight_kg = data.weight_kg
    return changed


def _weight_changed(patient: Patient, now: datetime) -> None:
    for hook in settings.PATIENT_WEIGHT_CHANGED_HOOKS:
        import_string(hook)(patient=patient, now=now)


def _admit(data: AdtPatient, now: datetime) -> Patient:
    _check_not_alias(data.mrn, PID_3)
    patient = _locked(data.mrn)
    if patient is not None:  # a resent or repeated admission: the same person, else refused
        _check_not_merged(patient, PID_3)
        if conflicts := _identity_conflicts(patient, data):
            raise AdtRefusal(205, f"PID-3 MRN already names another patient ({', '.join(conflicts)} differ)", PID_3)
        patient.discharged_at = None  # admitted again
        return _update(patient, data, now)
    required = (
        ("PID-5 family name", data.family_name, Where("PID", 5)),
        ("PID-5 given name", data.given_name, Where("PID", 5)),
        ("PID-7 birth date", data.birth_date, Where("PID", 7)),
        ("PID-8 sex", data.sex, Where("PID", 8)),
        ("OBX body weight", data.weight_kg, Where("OBX", 5)),
        ("OBX body height", data.height_cm, Where("OBX", 5)),
        ("PV1-3 ward", data.ward, PV1_3),
    )
    missing = [(label, where) for label, value, where in required if value in ("", None)]
    if missing or data.birth_date is None or data.weight_kg is None or data.height_cm is None:
        raise AdtRefusal(101, f"a new patient needs {', '.join(label for label, _ in missing)}", missing[0][1])
    team = _team_for_ward(data.ward)
    patient = Patient(
        mrn=data.mrn, family_name=data.family_name, given_name=data.given_name, birth_date=data.birth_date,
        sex=data.sex, weight_kg=data.weight_kg, height_cm=data.height_cm, care_team=team, ward=data.ward,
    )  # fmt: skip
    _save(patient, data)
    return patient


def _update(patient: Patient, data: AdtPatient, now: datetime) -> Patient:
    weight_changed = _apply_demographics(patient, data)
    if data.ward and data.ward != patient.ward:
        patient.care_team, patient.ward = _team_for_ward(data.ward), data.ward
    _save(patient, data)
    if weight_changed:
        _weight_changed(patient, now)
    return patient


def _existing(mrn: str, where: Where) -> Patient:
    _check_not_alias(mrn, where)
    patient = _locked(mrn)
    if patient is None:
        raise AdtRefusal(204, f"{where.segment}-{where.field} names no known patient", where)
    _check_not_merged(patient, where)
    return patient


def _move(event: AdtEvent, now: datetime) -> Patient:
    data = event.patient
    patient = _existing(data.mrn, PID_3)
    if event.trigger == "A02" and not data.ward:
        raise AdtRefusal(101, "PV1-3 new ward is missing", PV1_3)
    if data.ward:
        patient.care_team, patient.ward = _team_for_ward(data.ward), data.ward
    if event.trigger == "A03":
        patient.discharged_at = event.event_at or now
    elif patient.discharged_at is not None:  # a transfer means the patient is in hospital again
        patient.discharged_at = None
    _save(patient, data)
    return patient


def _merge_checks() -> list[Callable[..., str | None]]:
    return [import_string(path) for path in settings.PATIENT_MERGE_CHECKS]


def _merge(event: AdtEvent, now: datetime) -> Patient:
    data = event.patient
    if not event.prior_mrn:
        raise AdtRefusal(101, "MRG-1 prior patient identifier is missing", MRG_1)
    if event.prior_mrn == data.mrn:
        raise AdtRefusal(205, "MRG-1 and PID-3 name the same record", MRG_1)
    survivor = _existing(data.mrn, PID_3)
    prior = _locked(event.prior_mrn)
    if prior is None:
        alias = PatientAlias.objects.filter(mrn=event.prior_mrn).first()
        if alias is not None and alias.patient_id == survivor.pk:
            return survivor  # a resent merge: already done
        raise AdtRefusal(204, "MRG-1 names no known patient", MRG_1)
    if prior.merged_into_id is not None:
        if prior.merged_into_id == survivor.pk:
            return survivor  # a resent merge
        raise AdtRefusal(205, "MRG-1 names a record already merged into another patient", MRG_1)
    if conflicts := _identity_conflicts(survivor, data):
        raise AdtRefusal(205, f"PID-3 MRN names a patient whose {', '.join(conflicts)} differ", PID_3)
    for patient, where in ((prior, MRG_1), (survivor, PID_3)):
        for check in _merge_checks():
            if problem := check(patient=patient):
                raise AdtRefusal(207, f"merge refused: {where.segment}-{where.field}: {problem}", where)
    # The merged record stays, with its clinical rows and its history; it follows the survivor's care team so
    # that the same people see both. Records merged into it before now point at the survivor.
    Patient.objects.filter(merged_into=prior).update(merged_into=survivor)
    PatientAlias.objects.filter(patient=prior).update(patient=survivor)
    prior.merged_into, prior.merged_at, prior.care_team = survivor, event.event_at or now, survivor.care_team
    prior.save(update_fields=["merged_into", "merged_at", "care_team"])
    PatientAlias.objects.create(mrn=prior.mrn, authority=data.authority, patient=survivor, merged_record=prior)
    return _update(survivor, data, now)


@transaction.atomic
def adt_apply(*, event: AdtEvent, now: datetime) -> Patient:
    """Carry out one ADT event; raise AdtRefusal, having written nothing, when it cannot be.

    Run it under the caller's pghistory context (the MLLP listener's), as results are."""
    if event.trigger in CREATE_EVENTS:
        return _admit(event.patient, now)
    if event.trigger in UPDATE_EVENTS:
        return _update(_existing(event.patient.mrn, PID_3), event.patient, now)
    if event.trigger in MOVE_EVENTS:
        return _move(event, now)
    if event.trigger in MERGE_EVENTS:
        return _merge(event, now)
    raise AdtRefusal(201, "unsupported ADT event", Where("MSH", 9))
