from __future__ import annotations

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models

from alerts.models import Alert
from monitoring.models import LabTest
from patients.models import NO_DELETE, Patient
from results.choices import (
    CRITICAL_FLAGS,
    Comparator,
    MessageOutcome,
    OutboundStatus,
    ResultFlag,
    ResultSource,
    ResultStatus,
    Sex,
    ValueType,
)
from specimens.models import Specimen


@pghistory.track()
class ResultSpec(models.Model):
    """How a catalogue analyte is resulted: unit, value type, CTCAE term, delta check."""

    lab_test = models.OneToOneField(LabTest, on_delete=models.PROTECT, related_name="result_spec")
    unit = models.CharField("UCUM unit", max_length=30, blank=True)
    value_type = models.CharField(max_length=3, choices=ValueType.choices, default=ValueType.NUMERIC)
    decimal_places = models.PositiveSmallIntegerField(default=1)
    ctcae_term_low = models.CharField("CTCAE term when low", max_length=80, blank=True)
    ctcae_term_high = models.CharField("CTCAE term when high", max_length=80, blank=True)
    delta_percent = models.DecimalField(
        max_digits=6, decimal_places=1, null=True, blank=True, help_text="Flag a change larger than this percentage"
    )
    delta_absolute = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True, help_text="... or larger than this, in the unit"
    )
    delta_window = models.DurationField(null=True, blank=True, help_text="Compare with results this recent")

    class Meta:
        ordering = ["lab_test__name"]

    def __str__(self) -> str:
        return f"{self.lab_test.name} [{self.unit}]"


@pghistory.track()
class ReferenceRange(models.Model):
    """Reference and critical limits, by sex and age band; the most specific matching row applies."""

    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="reference_ranges")
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    age_min_years = models.PositiveSmallIntegerField(default=0)
    age_max_years = models.PositiveSmallIntegerField(default=150)
    low = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    high = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    critical_low = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    critical_high = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ["lab_test__name", "sex", "age_min_years"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(age_min_years__lte=models.F("age_max_years")), name="range_age_band_ordered"
            ),
        ]

    def __str__(self) -> str:
        band = f"{self.sex or 'any'} {self.age_min_years}-{self.age_max_years}"
        return f"{self.lab_test.name} {band}: {self.low}-{self.high}"


@pghistory.track()
class ResultAnswer(models.Model):
    """An answer a qualitative or coded test can have (HBsAg: non-reactive / reactive), and whether it is
    abnormal; the codes are the lab's (e.g. SNOMED CT or HL7 0136) as they arrive in OBX-5."""

    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="answers")
    code = models.CharField(max_length=60)
    system = models.CharField(max_length=40, blank=True)
    text = models.CharField(max_length=120)
    abnormal = models.BooleanField()

    class Meta:
        ordering = ["lab_test__name", "abnormal", "text"]
        constraints = [
            models.UniqueConstraint(fields=["lab_test", "system", "code"], name="result_answer_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.lab_test.name}: {self.text}"


class InboundMessage(models.Model):
    """An HL7 message as received: duplicates are recognised by sender and control id (MSH-3, MSH-4, MSH-10)."""

    sending_application = models.CharField(max_length=180, blank=True)
    sending_facility = models.CharField(max_length=180, blank=True)
    control_id = models.CharField(max_length=199)
    message_type = models.CharField(max_length=20, blank=True)
    version = models.CharField(max_length=10, blank=True)
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=2, choices=MessageOutcome.choices)
    results_stored = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        triggers = [pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete)]
        constraints = [
            models.UniqueConstraint(
                fields=["sending_application", "sending_facility", "control_id"], name="inbound_message_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.control_id} from {self.sending_application}"


# The review inbox's order: critical values first, then the CTCAE grade (ungraded last), newest first. The selector
# and the partial index that serves a page of it without sorting every unreviewed result share it
# (docs/architecture.md §6).
REVIEW_ORDER = (
    models.Case(
        models.When(flag__in=list(CRITICAL_FLAGS), then=models.Value(1)),
        default=models.Value(0),
        output_field=models.IntegerField(),
    ).desc(),
    models.F("ctcae_grade").desc(nulls_last=True),
    models.F("verified_at").desc(),
    models.F("id").desc(),
)


@pghistory.track()
class Result(models.Model):
    """One version of a result. An amendment is a new row that `supersedes` the verified one; the
    original stays (is_current=False). `root` is the first version: alerts are about it."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="results")
    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="results")
    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    value_numeric = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    value_text = models.CharField(max_length=200, blank=True)
    value_comparator = models.CharField(max_length=2, choices=Comparator.choices, blank=True)
    value_code = models.CharField(max_length=60, blank=True)
    value_code_system = models.CharField(max_length=40, blank=True)
    decimal_places = models.PositiveSmallIntegerField(default=2, help_text="Reporting precision of the value")
    unit = models.CharField(max_length=30, blank=True)
    received_value = models.CharField(max_length=60, blank=True)
    received_unit = models.CharField(max_length=30, blank=True)
    observed_at = models.DateTimeField()

    reference_low = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    reference_high = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    flag = models.CharField(max_length=2, choices=ResultFlag.choices, blank=True)
    delta_flag = models.BooleanField(default=False)
    ctcae_term = models.CharField(max_length=80, blank=True)
    ctcae_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    ctcae_version = models.CharField(max_length=10, blank=True)
    ctcae_lab_only = models.BooleanField(default=False)
    ctcae_assumed = models.BooleanField(default=False, help_text="The grade rests on CTCAE's worst-case assumption")

    # As the lab sent them, beside LabFlow's own (HL7 OBX-7, OBX-8, OBX-11, OBX-14, NTE).
    lab_reference_range = models.CharField(max_length=60, blank=True)
    lab_flags = models.CharField(max_length=20, blank=True)
    lab_status = models.CharField(max_length=1, blank=True)
    lab_observed_at = models.DateTimeField(null=True, blank=True)
    lab_comment = models.TextField(blank=True)
    inbound_message = models.ForeignKey(
        InboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="results"
    )

    status = models.CharField(max_length=20, choices=ResultStatus.choices, default=ResultStatus.PRELIMINARY)
    version = models.PositiveSmallIntegerField(default=1)
    root = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="versions")
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    is_current = models.BooleanField(default=True)
    amendment_reason = models.TextField(blank=True)

    source = models.CharField(max_length=10, choices=ResultSource.choices, default=ResultSource.MANUAL)
    message_control_id = models.CharField(max_length=60, blank=True)
    entered_at = models.DateTimeField()
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    review_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-observed_at", "-id"]
        triggers = [NO_DELETE]
        permissions = [
            ("enter_result", "Can enter and import results"),
            ("verify_result", "Can verify results entered by others"),
            ("amend_result", "Can amend verified results"),
            ("review_result", "Can review verified results (oncologist sign-off)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["specimen", "lab_test"], condition=models.Q(is_current=True), name="result_one_current"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["preliminary", "retracted", "not_obtained"])
                | models.Q(verified_at__isnull=False),
                name="result_verified_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(verified_by__isnull=True) | ~models.Q(verified_by=models.F("entered_by")),
                name="result_not_self_verified",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "lab_test", "-observed_at"], name="result_trend_idx"),
            models.Index(
                *REVIEW_ORDER,
                condition=models.Q(is_current=True, reviewed_at__isnull=True, status__in=["final", "amended"]),
                name="result_review_inbox_idx",
            ),
            # The verification queue in its order: a page reads its 100 rows, not every preliminary result.
            models.Index(
                fields=["entered_at", "id"], condition=models.Q(status="preliminary"), name="result_unverified_idx"
            ),
            # "Superseded by nothing" probes only the few amending rows (the unique index holds every result).
            models.Index(
                fields=["supersedes"], condition=models.Q(supersedes__isnull=False), name="result_supersedes_idx"
            ),
            # Resent HL7 messages are recognised by their control id.
            models.Index(
                fields=["message_control_id"], condition=models.Q(source="hl7"), name="result_hl7_control_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lab_test.name} {self.display_value} ({self.status})"

    @property
    def display_value(self) -> str:
        if self.value_numeric is None:
            return self.value_text
        return f"{self.value_comparator}{self.value_numeric:.{self.decimal_places}f} {self.unit}".strip()


class CriticalCall(models.Model):
    """Read-back log of a critical result call (Joint Commission NPSG.02.03.01). Append-only."""

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="critical_calls")
    called_at = models.DateTimeField()
    caller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recipient = models.CharField(max_length=120, help_text="Who took the call (name, role)")
    read_back_confirmed = models.BooleanField(
        help_text="The recipient read back two patient identifiers and the value."
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["called_at", "id"]
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"Call about alert {self.alert_id} at {self.called_at:%H:%M}"


class OutboundMessage(models.Model):
    """An HL7 message to the EHR, written in the transaction that verified its results (a transactional outbox)
    and delivered by a Celery task in `sequence` order per patient (docs/interfaces.md, "Results out").

    Never deleted; delivery changes only its status, attempts and ACK fields; the payload is never rewritten."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="outbound_messages")
    kind = models.CharField(max_length=10, default="ORU^R01")
    payload = models.TextField(help_text="The HL7 message as sent, segments separated by carriage returns")
    control_id = models.CharField(max_length=20, unique=True)
    sequence = models.PositiveIntegerField(help_text="Order among the patient's messages, from 1")
    results = models.ManyToManyField(Result, related_name="outbound_messages", blank=True)
    status = models.CharField(max_length=10, choices=OutboundStatus.choices, default=OutboundStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    ack_code = models.CharField(max_length=2, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(null=True, blank=True)
    resent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["patient_id", "sequence"]
        triggers = [
            NO_DELETE,
            pgtrigger.Protect(
                name="payload_fixed",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("payload", "control_id", "sequence", "patient", "kind"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["patient", "sequence"], name="outbound_patient_sequence_unique"),
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(sent_at__isnull=False), name="outbound_sent_has_time"
            ),
        ]
        indexes = [
            # The delivery task reads only what is not yet accepted.
            models.Index(
                fields=["patient", "sequence"], condition=~models.Q(status="sent"), name="outbound_unsent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.control_id} ({self.status})"
