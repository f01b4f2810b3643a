"""What a parsed ORU^R01 is: the message, its observations (OBX) and their coded values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class Observation:
    """One OBX segment."""

    set_id: str
    loinc_code: str  # OBX-3.1 when OBX-3.3 is LN (else OBX-3.4 when OBX-3.6 is LN), "" otherwise
    name: str
    value_type: str
    value: str
    unit: str
    reference_range: str
    abnormal_flags: str  # OBX-8 repetitions joined with "~" (table 0078: L, H, LL, HH, A, AA, N, ...)
    status: str
    observed_at: datetime | None
    code: str = ""  # OBX-3.1 whatever the coding system
    coding_system: str = ""  # OBX-3.3
    accession: str = ""  # of the OBR group this OBX belongs to
    notes: list[str] = field(default_factory=list)  # NTE-3 of the NTE segments following the OBX
    sequence: int = 0  # 1-based occurrence of this OBX in the message (ERR-2 locations)
    coded: Coded | None = None  # OBX-5 of a coded value type (CE, CWE, CNE, CF)
    accession_at: tuple[str, int, int] = ("SPM", 1, 2)  # where the accession was read (segment, sequence, field)


@dataclass(frozen=True)
class Coded:
    """A coded OBX-5 (CE/CWE/CNE): identifier, text and coding system, and the alternate triplet."""

    code: str
    text: str
    system: str
    alt_code: str = ""
    alt_text: str = ""
    alt_system: str = ""


@dataclass
class OruMessage:
    """The parts of an ORU^R01 that a laboratory result store needs."""

    control_id: str
    sending_application: str
    sending_facility: str
    message_type: str
    patient_mrn: str
    patient_family: str
    patient_given: str
    patient_birth_date: date | None
    accession: str  # of the first OBR group: SPM-2, else OBR-3, else OBR-2; "" when none is given
    observations: list[Observation]
    receiving_application: str = ""
    receiving_facility: str = ""
    version: str = ""
    processing_id: str = ""
    collected_at: datetime | None = None  # SPM-17.1, else OBR-7, of the first OBR group
    notes: list[str] = field(default_factory=list)  # NTE not attached to an OBX
    raw_msh: str = field(default="", repr=False, compare=False)  # the MSH segment as received, for the ACK
