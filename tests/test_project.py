"""Project-level promises: deploy checks, OpenAPI schema, demo data, Compose file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from alerts.choices import AlertKind
from alerts.models import Alert
from assessments.models import Assessment
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from orders.choices import GateVerdict, PreparationStatus
from orders.gate import dose_gates
from orders.models import Dose, Preparation
from patients.models import CareTeam, Patient, WardCareTeam
from tests.orders.helpers import live_preparation

ROOT = Path(__file__).resolve().parent.parent


def test_production_configuration_passes_check_deploy_without_warnings():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "labflow.settings",
        "DEBUG": "false",
        "SECURE_HTTPS": "true",
        "SECRET_KEY": "k3v!Q9zT#p2Lw8sX@f5Rb7Yn1Hc4Jm6Gd0Ae-Uo_Ix^Zq&Vt*Ks%Np$Wr(Ey)Lg",
        "ALLOWED_HOSTS": "labflow.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_openapi_schema_lists_resources_and_actions(api_as, nurse_a):
    client = api_as(nurse_a)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/patients/",
        "/api/care-teams/",
        "/api/monitoring-tests/",
        "/api/alerts/",
        "/api/alerts/{id}/acknowledge/",
        "/api/alerts/{id}/resolve/",
        "/api/specimens/collect/",
    ):
        assert path in paths, path
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


@pytest.mark.django_db
def test_seed_demo_creates_teams_users_patients_and_due_tests(client):
    call_command("seed_demo", "--patients", "50", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert CareTeam.objects.count() == 2
    assert len({team.ward for team in CareTeam.objects.all()}) == 2
    assert {(m.ward, m.care_team.ward) for m in WardCareTeam.objects.all()} == {("4A", "Ward 4A"), ("7B", "Ward 7B")}
    assert Patient.objects.count() == 50
    for username in ("admin", "tech.ada", "tech.ben", "onc.day", "onc.cell", "nurse.day", "nurse.cell"):
        assert User.objects.get(username=username).check_password("labflow-demo-2026")
    assert MonitoringTest.objects.filter(status="scheduled").count() >= 20
    first_doses = list(Dose.objects.filter(number=1).select_related("course__patient", "course__regimen"))
    verdicts = {gate.verdict for gate in dose_gates(first_doses, now=timezone.now()).values()}
    assert {GateVerdict.CLEARED, GateVerdict.WITHHELD, GateVerdict.DISCONTINUED, GateVerdict.PENDING} <= verdicts
    findings_alerts = Alert.objects.filter(kind__in=[AlertKind.TOXICITY, AlertKind.CRITICAL_RESULT])
    assert sum(any(f["key"].startswith("dose:") for f in a.findings) for a in findings_alerts) == 1
    car_t = Patient.objects.get(mrn="LF100004")  # the Cellular Therapy Unit patient with CRS (README)
    assert car_t.care_team.ward == "Ward 7B"
    assert car_t.courses.get().regimen.drug.cell_therapy
    crs = list(Assessment.objects.filter(patient=car_t).order_by("assessed_at").values_list("crs_grade", flat=True))
    assert crs == [0, 1, 2]
    assert Assessment.objects.filter(patient=car_t).latest("assessed_at").icans_grade == 1
    assert Alert.objects.filter(kind=AlertKind.CRS, patient=car_t).exists()
    # the every-8-hours assessment schedule: two satisfied by the demo assessments, the one due 4 h ago missed
    assessments = MonitoringTest.objects.filter(patient=car_t, lab_test__kind="bedside_assessment")
    assert assessments.count() == 38
    assert assessments.filter(status="satisfied").count() == 2
    monitoring_tests_flag_overdue()
    (missed,) = assessments.filter(status="overdue")
    assert timedelta(hours=3) < timezone.now() - missed.due_at < timedelta(hours=5)
    assert Alert.objects.filter(kind=AlertKind.ASSESSMENT_OVERDUE, patient=car_t, members=[missed.pk]).exists()

    on_plan = Patient.objects.get(mrn="LF100017")  # nivolumab + ipilimumab, then nivolumab (README)
    drugs = sorted(c.regimen.drug.name for c in on_plan.treatment_plans.get().courses.all())
    assert drugs == ["Ipilimumab", "Nivolumab"]
    step_up = Patient.objects.get(mrn="LF100006")  # teclistamab step-up dosing (README)
    assert step_up.courses.get().regimen.steps.count() == 3
    # blinatumomab in 48 h bags (README): bag 1 hung ~23 h ago after its dexamethasone, bag 2 waits for verification
    romano = Patient.objects.get(mrn="LF100008")
    assert romano.care_team.ward == "Ward 7B"
    infusion = romano.courses.get()
    assert (infusion.regimen.drug.name, infusion.bag_hours) == ("Blinatumomab", 48)
    bag_1, bag_2 = (live_preparation(infusion.doses.get(number=n)) for n in (1, 2))
    assert bag_1.status == PreparationStatus.ADMINISTERED
    assert [getattr(bag_1, f).username for f in ("prepared_by", "verified_by", "administered_by")] == [
        "tech.ada", "tech.ben", "nurse.cell"
    ]  # fmt: skip
    assert bag_1.premedication_classes_given == ["corticosteroid"]
    hung, premedication = bag_1.administration_started_at, bag_1.premedication_given_at
    assert hung is not None
    assert premedication is not None
    assert premedication < hung
    assert timedelta(hours=22) < timezone.now() - hung < timedelta(hours=24)
    assert bag_2.status == PreparationStatus.AWAITING_VERIFICATION
    assert (getattr(bag_2.prepared_by, "username", None), bag_2.verified_at) == ("tech.ada", None)
    assert bag_2.final_volume_ml is not None
    assert bag_1.beyond_use_at is not None
    assert bag_2.beyond_use_at is not None
    assert bag_2.beyond_use_at > bag_1.beyond_use_at  # its own clock, from its own puncture
    assert bag_2.dose.planned_at == hung + timedelta(hours=48)  # due when bag 1 runs out
    client.force_login(User.objects.get(username="nurse.cell"))
    ward = client.get("/orders/ward/").content.decode()
    assert f"bag 2 due <strong>{timezone.localtime(hung + timedelta(hours=48)):%Y-%m-%d %H:%M}</strong>" in ward
    # distinct people, both sexes on each ward (README walkthrough); a critical potassium for LF100009
    assert len(set(Patient.objects.values_list("given_name", "family_name"))) == 50
    for team in CareTeam.objects.all():
        assert set(team.patients.values_list("sex", flat=True)) == {"F", "M"}
    critical = Alert.objects.get(kind=AlertKind.CRITICAL_RESULT)
    assert critical.patient.mrn == "LF100009"
    withheld = Patient.objects.get(mrn="LF100005").courses.get().doses.get(number=1)  # ALT 3.6 x ULN (README)
    assert dose_gates([withheld], now=timezone.now())[withheld.pk].verdict == GateVerdict.WITHHELD
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115  # idempotent for people
    assert Patient.objects.count() == 50
    assert Assessment.objects.filter(patient=car_t).count() == 3
    assert on_plan.treatment_plans.count() == 1
    assert step_up.courses.count() == 1
    assert romano.courses.count() == 1
    assert Preparation.objects.filter(dose__course=infusion).exclude(status=PreparationStatus.ORDERED).count() == 2


def test_collectstatic_with_the_production_storage(tmp_path):
    """The manifest storage resolves every reference in the vendored files (make run and Docker need it)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "labflow.settings",
        "DEBUG": "false",
        "SECURE_HTTPS": "false",
        "SECRET_KEY": "collectstatic-check-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
        "STATIC_ROOT": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles.json").exists()


def test_compose_file_is_valid_against_the_compose_specification():
    result = subprocess.run(
        [Path(sys.executable).parent / "check-jsonschema", "--builtin-schema", "vendor.compose-spec",
         ROOT / "docker-compose.yml"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_catalogues_are_editable_in_the_admin_and_clinical_records_are_not(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="a-long-test-password")
    client.force_login(admin)
    for path in ("orders/drug", "orders/regimen", "orders/holdrule", "results/resultspec", "results/referencerange",
                 "specimens/container", "specimens/testspecimenrequirement", "monitoring/labtest"):  # fmt: skip
        assert client.get(f"/admin/{path}/add/").status_code == 200, path
    for path in ("orders/preparation", "results/result", "specimens/specimen", "alerts/alert"):
        assert client.get(f"/admin/{path}/").status_code == 200, path
        assert client.get(f"/admin/{path}/add/").status_code == 403, path
