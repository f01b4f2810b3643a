"""What an ADT event asks of the patient register, as plain data (no Django, no HL7).

`results.hl7.adt` reads HL7 v2 ADT messages into these; `patients.services.adt_apply` carries them out. The
register sits below the HL7 code in the import direction (docs/architecture.md §2), so the shapes live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

#: Events that create a patient (admit, register), update one (update, update person), move one (transfer,
#: discharge) or merge two records (merge patient information: patient identifier list).
CREATE_EVENTS = frozenset({"A01", "A04"})
UPDATE_EVENTS = frozenset({"A08", "A31"})
MOVE_EVENTS = frozenset({"A02", "A03"})
MERGE_EVENTS = frozenset({"A40"})
EVENTS = CREATE_EVENTS | UPDATE_EVENTS | MOVE_EVENTS | MERGE_EVENTS


@dataclass(frozen=True)
class Where:
    """Where in the message a value was read: segment ID, 1-based occurrence, field (ERR-2)."""

    segment: str
    field: int
    sequence: int = 1


@dataclass(frozen=True)
class AdtPatient:
    """The patient a message names. Empty strings / None: the message does not say (never "clear it")."""

    mrn: str
    authority: str
    family_name: str = ""
    given_name: str = ""
    birth_date: date | None = None
    sex: str = ""  # HL7 table 0001, upper case
    weight_kg: Decimal | None = None
    height_cm: Decimal | None = None
    ward: str = ""  # PV1-3.1 point of care
    weight_at: Where = Where("OBX", 5)
    height_at: Where = Where("OBX", 5)


@dataclass(frozen=True)
class AdtEvent:
    trigger: str  # EVN-1 / MSH-9.2, one of EVENTS
    patient: AdtPatient
    event_at: datetime | None = None  # EVN-2 (recorded), else MSH-7
    prior_mrn: str = ""  # A40: MRG-1, the record merged into `patient`


class AdtRefusal(Exception):
    """The register refuses the event: HL7 table 0357 code, a message naming positions (never values), where."""

    def __init__(self, code: int, message: str, where: Where | None = None) -> None:
        self.code = code
        self.message = message
        self.where = where
        super().__init__(f"{code}: {message}")
