"""HL7 v2 laboratory results: parse ORU^R01, build ACKs, split batch files.

Pure protocol code, no Django. The ``hl7`` package (python-hl7) splits a message into segments, fields,
repetitions, components and sub-components; this package walks that tree and decodes escape sequences
itself (python-hl7's own ``unescape`` logs the field's content on a malformed escape, and a field can hold
patient data).

Error messages (``Hl7Error.message``) name positions, never values: they go into ACKs and logs.

The modules, in reading order:

- :mod:`~results.hl7.errors`: :class:`Hl7Error` and the HL7 table 0357 error codes.
- :mod:`~results.hl7.messages`: what a parsed message is (:class:`OruMessage`, :class:`Observation`).
- :mod:`~results.hl7.encoding`: delimiters (MSH-1/MSH-2) and escape sequences.
- :mod:`~results.hl7.segments`: text → segments, decoded field access, timestamps.
- :mod:`~results.hl7.validation`: the checks on MSH, OBX values and the HL7 tables they use.
- :mod:`~results.hl7.parsing`: :func:`parse_oru`, one ORU^R01 into an :class:`OruMessage`.
- :mod:`~results.hl7.ack`: ACK messages, :func:`acknowledge` (the glue for an MLLP handler).
- :mod:`~results.hl7.batch`: FHS/BHS batch files: split them, answer them.
"""
