"""Encoding characters (MSH-1, MSH-2) and escape sequences (HL7 v2.5 §2.7)."""

from __future__ import annotations

from dataclasses import dataclass

from results.hl7.errors import Hl7Error


@dataclass(frozen=True)
class Encoding:
    """The delimiters of a message."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


#: ``|^~\&``, the delimiters of every message LabFlow writes.
STANDARD = Encoding()


def encoding_of(msh: str) -> Encoding:
    """The delimiters declared in an MSH segment (MSH-1, MSH-2)."""
    if len(msh) < 5 or not msh.startswith("MSH"):
        raise Hl7Error(100, "message does not start with an MSH segment", "MSH", ack_code="AR")
    sep = msh[3]
    end = msh.find(sep, 4)
    chars = msh[4:] if end < 0 else msh[4:end]
    if sep.isalnum() or sep.isspace() or not 2 <= len(chars) <= 5 or len(set(chars + sep)) != len(chars) + 1:
        raise Hl7Error(102, "MSH-1/MSH-2 encoding characters are invalid", "MSH", 2, ack_code="AR")
    chars = chars[:4].ljust(4, "\x00")  # a fifth character (v2.7 truncation) plays no part here
    return Encoding(
        field=sep,
        component=chars[0],
        repetition=chars[1],
        escape=chars[2] if chars[2] != "\x00" else "",
        subcomponent=chars[3] if chars[3] != "\x00" else "&",
    )


def unescape(value: str, enc: Encoding) -> str:
    """Decode HL7 escape sequences (v2.5 §2.7): \\F\\ \\S\\ \\R\\ \\T\\ \\E\\, \\Xhh..\\, \\.br\\ and kin.

    Highlighting (\\H\\, \\N\\), character-set switches and unknown sequences are dropped.
    """
    esc = enc.escape
    if not esc or esc not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        end = value.find(esc, i + 1) if ch == esc else -1
        if end < 0:
            out.append(ch)
            i += 1
            continue
        out.append(_escape_replacement(value[i + 1 : end], enc))
        i = end + 1
    return "".join(out)


def _escape_replacement(seq: str, enc: Encoding) -> str:
    simple = {
        "F": enc.field,
        "S": enc.component,
        "R": enc.repetition,
        "T": enc.subcomponent,
        "E": enc.escape,
        ".br": "\n",
        ".sp": "\n",
        ".ce": "\n",
    }
    if seq in simple:
        return simple[seq]
    if seq.startswith("X") and len(seq) > 1 and len(seq) % 2 == 1:
        return _hex_text(seq[1:])
    if seq.startswith(".sp") and seq[3:].isdigit():
        return "\n" * min(int(seq[3:]), 100)
    return ""


def _hex_text(digits: str) -> str:
    """The text of a \\Xhh..\\ sequence: UTF-8, else Latin-1; "" when the digits are not hexadecimal."""
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def escape(value: str) -> str:
    """Encode text for a field of a message using the standard delimiters ``|^~\\&`` (line breaks → space)."""
    table = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\", "\r": " ", "\n": " "}
    return "".join(table.get(ch, ch) for ch in value)


def reencode(raw: str, enc: Encoding) -> str:
    """A raw field in the sender's encoding, re-encoded with the standard delimiters."""
    if enc == STANDARD:
        return raw
    return "~".join(
        "^".join("&".join(escape(unescape(sub, enc)) for sub in comp.split(enc.subcomponent)) for comp in rep)
        for rep in (r.split(enc.component) for r in raw.split(enc.repetition))
    )
