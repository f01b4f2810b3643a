"""The errors of HL7 message handling: HL7 table 0357 codes, and where in the message the problem is."""

from __future__ import annotations

from typing import Literal

AckCode = Literal["AA", "AE", "AR"]

#: HL7 table 0357, message error condition codes.
ERROR_TEXT: dict[int, str] = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    104: "Value too long",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}

#: Codes that reject the message as a whole (MSA-1 AR) rather than report an error in its content (AE).
REJECT_CODES = frozenset({200, 201, 202, 203})


class Hl7Error(Exception):
    """A message that cannot be used, with its HL7 table 0357 code and where the problem is.

    ``segment``/``sequence``/``field`` locate the problem (ERR-2: segment ID, 1-based occurrence of that
    segment in the message, field position). ``ack_code`` is the MSA-1 the error deserves: AR for an
    unsupported message type, event, processing id or version and for unreadable data, AE otherwise.
    """

    def __init__(
        self,
        code: int,
        message: str,
        segment: str | None = None,
        field: int | None = None,
        *,
        sequence: int | None = None,
        ack_code: AckCode | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.segment = segment
        self.field = field
        self.sequence = sequence if sequence is not None else (1 if segment else None)
        self.ack_code: AckCode = ack_code or ("AR" if code in REJECT_CODES else "AE")
        super().__init__(f"{code} {self.text}: {message}")

    @property
    def text(self) -> str:
        """The table 0357 wording of the code."""
        return ERROR_TEXT.get(self.code, "Error")

    @property
    def location(self) -> str:
        """ERR-2 (ERL) as components: ``SEG^sequence^field``; empty when the error has no segment."""
        if not self.segment:
            return ""
        parts = [self.segment, str(self.sequence or 1)]
        if self.field is not None:
            parts.append(str(self.field))
        return "^".join(parts)
