from __future__ import annotations

from datetime import timedelta

import pghistory
import pgtrigger
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from monitoring.choices import LabTestKind, MonitoringTestStatus
from patients.models import NO_DELETE, Patient

MAX_GRACE_PERIOD = timedelta(days=7)

# The sweep audits its own set-based transitions in the flagging statement (MonitoringTestFlagEvent); the full
# snapshot trigger skips a row only if that statement armed this setting with its own statement_timestamp() and
# the row changed from one stage's status to its overdue status and nothing else but the flagged-at columns.
# Every other write keeps the full snapshot. docs/architecture.md §3 "The sweep's audit".
SWEEP_AUDIT_SETTING = "labflow.sweep"
SWEEP_FLAG_COLUMNS = ("status", "flagged_at", "result_flagged_at")
SWEEP_UNCHANGED_COLUMNS = (
    "id", "patient_id", "lab_test_id", "due_at", "grace_period", "deadline", "created_at", "created_by_id",
    "collected_at", "collected_by_id", "result_deadline", "recollection_of_id", "cancelled_at", "cancelled_by_id",
    "cancel_reason",
)  # fmt: skip


def _columns(alias: str) -> str:
    return "(" + ", ".join(f'{alias}."{column}"' for column in SWEEP_UNCHANGED_COLUMNS) + ")"


_NOT_A_SWEEP_FLAG = pgtrigger.Condition(
    "OLD.* IS DISTINCT FROM NEW.* AND NOT ("
    f"COALESCE(current_setting('{SWEEP_AUDIT_SETTING}', true), '') = statement_timestamp()::text"
    " AND (OLD.status, NEW.status) IN ("
    f"('{MonitoringTestStatus.SCHEDULED.value}', '{MonitoringTestStatus.OVERDUE.value}'), "
    f"('{MonitoringTestStatus.COLLECTED.value}', '{MonitoringTestStatus.RESULT_OVERDUE.value}'))"
    f" AND {_columns('OLD')} IS NOT DISTINCT FROM {_columns('NEW')})"
)


@pghistory.track()
class LabTest(models.Model):
    """Catalogue row for a laboratory test (extended by the specimens and results apps)."""

    name = models.CharField(max_length=120, unique=True)
    loinc_code = models.CharField(
        "LOINC code",
        max_length=10,
        blank=True,
        validators=[RegexValidator(r"^\d{1,7}-\d$", "A LOINC code is digits, a hyphen and a check digit.")],
        help_text="Required for a specimen test; a bedside assessment has none.",
    )
    kind = models.CharField(max_length=20, choices=LabTestKind.choices, default=LabTestKind.SPECIMEN)
    turnaround = models.DurationField(
        default=timedelta(hours=4), help_text="Time from collection within which a verified result is expected."
    )
    components = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="panels", help_text="For a panel: the analytes it reports."
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "lab test"
        constraints = [
            models.UniqueConstraint(
                fields=["loinc_code"], condition=~models.Q(loinc_code=""), name="labtest_loinc_code_unique"
            ),
            # Results, HL7 and CSV imports find a specimen test by its LOINC code; only bedside tests have none.
            models.CheckConstraint(
                condition=models.Q(kind=LabTestKind.BEDSIDE_ASSESSMENT) | ~models.Q(loinc_code=""),
                name="labtest_specimen_has_loinc_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.loinc_code})" if self.loinc_code else self.name

    @property
    def is_bedside(self) -> bool:
        return self.kind == LabTestKind.BEDSIDE_ASSESSMENT


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(condition=_NOT_A_SWEEP_FLAG))
@pghistory.track(
    # Written by the sweep's flagging statement (label = the stage's overdue status; the previous status is the
    # stage's: scheduled or collected), never by a trigger.
    pghistory.ManualEvent(MonitoringTestStatus.OVERDUE.value),
    pghistory.ManualEvent(MonitoringTestStatus.RESULT_OVERDUE.value),
    fields=list(SWEEP_FLAG_COLUMNS),
    model_name="MonitoringTestFlagEvent",
    obj_field=pghistory.ObjForeignKey(related_name="flag_events"),
)
class MonitoringTest(models.Model):
    """A test due for a patient; the sweep flags it once `deadline` (= due + grace) has passed."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="monitoring_tests")
    lab_test = models.ForeignKey(LabTest, on_delete=models.PROTECT, related_name="+")
    due_at = models.DateTimeField()
    grace_period = models.DurationField()
    deadline = models.DateTimeField(editable=False)
    status = models.CharField(
        max_length=20, choices=MonitoringTestStatus.choices, default=MonitoringTestStatus.SCHEDULED
    )
    flagged_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    collected_at = models.DateTimeField(null=True, blank=True)
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    result_deadline = models.DateTimeField(null=True, blank=True)
    result_flagged_at = models.DateTimeField(null=True, blank=True)
    recollection_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="recollection"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        permissions = [
            ("record_collection", "Can record that a monitoring test's specimen was collected"),
            ("cancel_monitoringtest", "Can cancel a monitoring test"),
        ]
        triggers = [NO_DELETE]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(grace_period__gte=timedelta(0), grace_period__lte=MAX_GRACE_PERIOD),
                name="monitoringtest_grace_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(deadline=models.F("due_at") + models.F("grace_period")),
                name="monitoringtest_deadline_is_due_plus_grace",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["collected", "result_overdue"])
                | models.Q(result_deadline__isnull=False),
                name="monitoringtest_collected_has_result_deadline",
            ),
        ]
        indexes = [
            # The sweep's only probe (healthchecks' alert_after): scheduled rows by deadline.
            models.Index(
                fields=["deadline"],
                condition=models.Q(status=MonitoringTestStatus.SCHEDULED),
                name="monitoringtest_deadline_idx",
            ),
            # The result-stage probe: collected rows by result deadline.
            models.Index(
                fields=["result_deadline"],
                condition=models.Q(status=MonitoringTestStatus.COLLECTED),
                name="monitoringtest_result_due_idx",
            ),
            models.Index(fields=["patient", "due_at"], name="monitoringtest_patient_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.lab_test.name} due {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class SweepHeartbeat(models.Model):
    """Last run of each periodic sweep, so a silent worker shows up as a stale beat."""

    name = models.CharField(max_length=60, primary_key=True)
    last_run_at = models.DateTimeField()
    last_flagged = models.PositiveIntegerField(default=0)
    # What /metrics reports (docs/architecture.md §5 Operations): the last run, and running totals that only grow
    # so Prometheus can take rates across worker restarts.
    last_duration_seconds = models.FloatField(db_default=0.0)
    last_rows_flagged = models.PositiveIntegerField(db_default=0)
    runs_total = models.PositiveBigIntegerField(db_default=0)
    duration_seconds_total = models.FloatField(db_default=0.0)
    rows_flagged_total = models.PositiveBigIntegerField(db_default=0)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_run_at:%H:%M:%S}"
