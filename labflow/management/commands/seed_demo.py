"""Demo data: two care teams, a user per role, ~50 patients, tests falling due over the next minutes."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.choices import Role
from assessments.grading import ICE_ITEMS
from assessments.services import assessment_record
from labflow.demo import collect_and_result_pre_dose
from monitoring.models import LabTest, MonitoringTest
from monitoring.services import monitoring_test_schedule
from orders.choices import ComponentKind, VerificationMethod
from orders.models import Dose, Preparation, Regimen, TherapyPlan, TreatmentCourse
from orders.selectors import LIVE, dose_step
from orders.services.courses import course_start, therapy_plan_start
from orders.services.identity import preparation_administer
from orders.services.preparations import (
    ComponentInput,
    preparation_record,
    preparation_release,
    preparation_start,
    preparation_verify,
)
from patients.choices import CareTeamRole, Sex
from patients.models import CareTeam, CareTeamMembership, Patient, WardCareTeam

DEMO_PASSWORD = "labflow-demo-2026"
TEAMS = [("Immunotherapy Day Unit", "Ward 4A"), ("Cellular Therapy Unit", "Ward 7B")]
# username, first, last, role, team index (None: lab staff serve every team)
USERS = [
    ("tech.ada", "Ada", "Okafor", Role.LAB_TECHNICIAN, None),
    ("tech.ben", "Ben", "Larsen", Role.LAB_TECHNICIAN, None),
    ("onc.day", "Clara", "Moreau", Role.ONCOLOGIST, 0),
    ("onc.cell", "David", "Chen", Role.ONCOLOGIST, 1),
    ("nurse.day", "Eva", "Rossi", Role.NURSE, 0),
    ("nurse.cell", "Farid", "Haddad", Role.NURSE, 1),
]
# The escalation ladder's people (docs/architecture.md §3): (username, first, last, group, team, role on the team).
LADDER_USERS = [
    ("charge.day", "Greta", "Holm", Role.NURSE, 0, CareTeamRole.CHARGE_NURSE),
    ("charge.cell", "Hugo", "Brandt", Role.NURSE, 1, CareTeamRole.CHARGE_NURSE),
    ("cover.cell", "Ines", "Vidal", Role.ONCOLOGIST, 1, CareTeamRole.COVERING_ONCOLOGIST),
    ("attending.day", "Jonas", "Berg", Role.ONCOLOGIST, 0, CareTeamRole.ATTENDING),
    ("attending.cell", "Kira", "Sato", Role.ONCOLOGIST, 1, CareTeamRole.ATTENDING),
]
# One person per MRN (LF100001 + n; even n the Day Unit, odd n the Cellular Therapy Unit): both sexes on each
# ward. The README's walkthrough points at patients by MRN (tests/test_project.py checks what each shows).
PEOPLE = [
    ("Margaret", "Thompson", "F"), ("Omar", "Haddad", "M"), ("Lena", "Fischer", "F"), ("Tomasz", "Kowalski", "M"),
    ("David", "Okafor", "M"), ("Yuki", "Tanaka", "F"), ("Grace", "Murphy", "F"), ("Luca", "Romano", "M"),
    ("Sara", "Lindqvist", "F"), ("Noah", "Jensen", "M"), ("Priya", "Raman", "F"), ("Elena", "Ivanova", "F"),
    ("James", "O'Brien", "M"), ("Fatima", "Benali", "F"), ("Carlos", "Silva", "M"), ("Hannah", "Weber", "F"),
    ("Wei", "Zhang", "M"), ("Aisha", "Mensah", "F"), ("Peter", "Novak", "M"), ("Ingrid", "Solberg", "F"),
    ("Mateo", "Garcia", "M"), ("Chloé", "Dubois", "F"), ("Ravi", "Patel", "M"), ("Olga", "Petrova", "F"),
    ("Samuel", "Adeyemi", "M"), ("Nora", "Kelly", "F"), ("Hiroshi", "Sato", "M"), ("Amira", "Nasser", "F"),
    ("Rosa", "Moreno", "F"), ("Jan", "de Vries", "M"), ("Eleanor", "Hughes", "F"), ("Kwame", "Asante", "M"),
    ("Linh", "Nguyen", "F"), ("Mikael", "Virtanen", "M"), ("Teresa", "Costa", "F"), ("Ahmed", "Karimi", "M"),
    ("Agnieszka", "Wójcik", "F"), ("Daniel", "Levi", "M"), ("Maria", "Papadopoulos", "F"), ("Tariq", "Hussain", "M"),
    ("Julia", "Becker", "F"), ("Arjun", "Mehta", "M"), ("Siobhan", "Byrne", "F"), ("Pablo", "Herrera", "M"),
    ("Astrid", "Nilsson", "F"), ("George", "Campbell", "M"), ("Mei", "Chen", "F"), ("Viktor", "Horváth", "M"),
    ("Zainab", "Bello", "F"), ("Thomas", "Schmidt", "M"),
]  # fmt: skip
PRE_DOSE_PANEL = [
    "WBC",
    "Neutrophils (ANC)",
    "Platelets",
    "Haemoglobin",
    "ALT",
    "AST",
    "Total bilirubin",
    "Creatinine",
    "TSH",
]


DEMO_PLAN = "Nivolumab + ipilimumab (melanoma), then nivolumab 480 mg q4w"
DEMO_STEP_UP = "Teclistamab step-up 0.06/0.3/1.5 mg/kg then 1.5 mg/kg weekly"
DEMO_BAGS = "Blinatumomab cycle 1 (R/R B-ALL, 45 kg or more): 9 then 28 µg/day, continuous"
# What the demo preparer types for a 48 h blinatumomab bag of 0.018 mg (1.44 mL of 12.5 µg/mL, with the bag's
# overfill). The label's volume table is NOT seeded (docs/clinical-sources.md §13): these stand for a preparer's
# entries in a demo, they are no reference for a real bag.
DEMO_BAG_VIAL_ML, DEMO_BAG_DILUENT_ML, DEMO_BAG_ML = Decimal("1.5"), Decimal(270), Decimal(250)


class Command(BaseCommand):
    help = "Load demo users, care teams, patients and monitoring tests due over the next minutes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--patients", type=int, default=50)
        parser.add_argument("--upcoming-minutes", type=int, default=10, help="spread new due tests over this window")
        parser.add_argument("--print-logins", action="store_true", help="print the URL and one login per role")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    @transaction.atomic
    def handle(self, *args: Any, patients: int, upcoming_minutes: int, print_logins: bool, url: str, **_: Any) -> None:
        rng = random.Random(2026)
        now = timezone.now()
        teams = [CareTeam.objects.get_or_create(name=name, defaults={"ward": ward})[0] for name, ward in TEAMS]
        for team in teams:  # the ADT feed's PV1-3 codes of the demo wards: "4A", "7B" (docs/interfaces.md)
            WardCareTeam.objects.get_or_create(ward=team.ward.removeprefix("Ward "), defaults={"care_team": team})
        self._users(teams)
        patient_rows = self._patients(teams, patients, rng)
        tests = {t.name: t for t in LabTest.objects.filter(name__in=PRE_DOSE_PANEL)}
        scheduled = 0
        # Already past deadline (flagged by the first sweep), then one falling due every ~30 s, then future doses.
        for offset_seconds, count in ((-1800, 4), (None, upcoming_minutes * 2), (3 * 86400, 20)):
            for i in range(count):
                patient = rng.choice(patient_rows)
                due = now + timedelta(seconds=offset_seconds if offset_seconds is not None else 30 * (i + 1))
                monitoring_test_schedule(
                    patient=patient,
                    lab_test=tests[rng.choice(PRE_DOSE_PANEL)],
                    due_at=due,
                    grace_period=timedelta(minutes=1 if offset_seconds is None else 15),
                    user=None,
                    now=now,
                )
                scheduled += 1
        courses = self._courses(patient_rows, now) if not TreatmentCourse.objects.exists() else 0
        courses += self._car_t_with_crs(patient_rows, now)
        courses += self._plan_and_step_up(patient_rows, now)
        courses += self._blinatumomab_bags(patient_rows, now)
        self.stdout.write(
            f"Demo data: {courses} new treatment courses, {len(teams)} care teams, {len(patient_rows)} patients, "
            f"{scheduled} new monitoring tests ({MonitoringTest.objects.count()} in all)."
        )
        if print_logins:
            self.stdout.write(
                f"\nLabFlow: {url}   (Ctrl-C stops every process and the embedded engines)"
                f"\nLogins, password {DEMO_PASSWORD!r}:"
            )
            for username, role in self.logins():
                self.stdout.write(f"  {role:<15} {username}")
            self.stdout.write("")

    def _courses(self, patients: list[Patient], now: datetime) -> int:
        """Courses with doses today and tomorrow: cleared, withheld and to be discontinued by the hold rules,
        waiting for labs, a critical potassium, CAR-T."""
        users = {u.username: u for u in User.objects.filter(username__in=[u[0] for u in USERS])}
        team_a = [p for p in patients if p.care_team.name == TEAMS[0][0]]
        team_b = [p for p in patients if p.care_team.name == TEAMS[1][0]]
        plans = [
            (team_a[0], "Pembrolizumab 200 mg q3w", 2, {}),
            (team_a[1], "Nivolumab 240 mg q2w", 3, {}),
            (team_a[2], "Pembrolizumab 200 mg q3w", 4, {"ALT": ("200", "U/L")}),  # 3.6 x ULN: withheld
            (team_a[3], "Ipilimumab 3 mg/kg q3w x4", 26, None),  # labs not drawn yet
            (team_a[4], "Atezolizumab 1200 mg q3w", 28, {"Potassium": ("6.8", "mmol/L")}),  # critical (> 6.2)
            (team_a[5], "Nivolumab 480 mg q4w", 5, {"ALT": ("480", "U/L")}),  # 8.6 x ULN: discontinue
        ]
        for patient, regimen, hours, values in plans:
            course = course_start(patient=patient, regimen=Regimen.objects.get(name=regimen),
                                  starts_at=now + timedelta(hours=hours), user=users["onc.day"], now=now)  # fmt: skip
            if values is not None:
                collect_and_result_pre_dose(
                    course.doses.get(number=1),
                    collector=users["nurse.day"],
                    enterer=users["tech.ada"],
                    verifier=users["tech.ben"],
                    values=values,
                )
        course_start(patient=team_b[0], regimen=Regimen.objects.get(name="Axicabtagene ciloleucel single infusion"),
                     starts_at=now + timedelta(hours=27), user=users["onc.cell"], now=now,
                     chain_of_identity="COI-DEMO-0001")  # fmt: skip
        return len(plans) + 1

    def _car_t_with_crs(self, patients: list[Patient], now: datetime) -> int:
        """A second Cellular Therapy Unit patient (Kowalski, LF100004), on axicabtagene since 20 h ago, with bedside
        assessments rising to CRS grade 2 and ICANS grade 1. The course schedules the CRS/ICANS assessments every
        8 h from the infusion (orders 0011): those due 20 h and 12 h ago are satisfied by the assessments 19 h and
        11 h ago; the grade-2 reassessment 7 h ago was an extra one (nothing was due), and the one due 4 h ago was
        missed: past its 2 h grace, the sweep flags it overdue and the nurses get "CRS/ICANS assessment overdue".
        Once per patient: a re-run finds the course and adds nothing."""
        team_b = [p for p in patients if p.care_team.name == TEAMS[1][0]]
        if len(team_b) < 2 or TreatmentCourse.objects.filter(patient=team_b[1]).exists():
            return 0
        patient = team_b[1]
        users = {u.username: u for u in User.objects.filter(username__in=["onc.cell", "nurse.cell"])}
        # course_start refuses a start more than a day back, so the infusion is planned 20 h ago, not two days ago:
        # an infusion recorded in the past would need every bedside step at past times.
        course_start(patient=patient, regimen=Regimen.objects.get(name="Axicabtagene ciloleucel single infusion"),
                     starts_at=now - timedelta(hours=20), user=users["onc.cell"], now=now,
                     chain_of_identity="COI-DEMO-0002")  # fmt: skip
        calm: dict[str, Any] = {
            **dict.fromkeys(ICE_ITEMS, True),
            "level_of_consciousness": "alert",
            "seizure": "none",
            "motor_weakness": "none",
            "raised_icp": "none",
        }
        normal = {"temperature_c": Decimal("37.2"), "systolic_bp_mmhg": 122, "vasopressors": "none", "oxygen": "none"}
        # 2 L/min by nasal cannula is low-flow oxygen; ICE 8/10 (cannot write a sentence or count back) is ICANS 1.
        grade_2 = {"temperature_c": Decimal("38.9"), "systolic_bp_mmhg": 86, "oxygen": "low_flow"}
        confused = {"writes_sentence": False, "counts_backwards": False}
        for hours_ago, findings in (
            (19, {**normal, **calm}),
            (11, {**normal, **calm, "temperature_c": Decimal("38.4")}),
            (7, {**normal, **calm, **grade_2, **confused}),
        ):
            assessment_record(patient=patient, assessed_at=now - timedelta(hours=hours_ago), user=users["nurse.cell"],
                              now=now, **findings)  # fmt: skip
        return 1

    def _plan_and_step_up(self, patients: list[Patient], now: datetime) -> int:
        """A Day Unit patient (LF100017) on nivolumab + ipilimumab then nivolumab (a therapy plan in two phases),
        and a Cellular Therapy Unit patient (LF100006) on teclistamab step-up dosing from tomorrow (premedication
        before each step-up dose, 48 h in hospital after it). Once per patient: a re-run adds nothing."""
        team_a = [p for p in patients if p.care_team.name == TEAMS[0][0]]
        team_b = [p for p in patients if p.care_team.name == TEAMS[1][0]]
        users = {u.username: u for u in User.objects.filter(username__in=["onc.day", "onc.cell"])}
        started = 0
        # Nivolumab 1 mg/kg needs at least ~55 kg to reach the label's 1 mg/mL in a 50 mL bag: a patient of 60 kg or
        # more (the first from the seventh on; the seeded weights make it LF100017).
        on_plan = next((p for p in team_a[6:] if p.weight_kg >= 60), None)
        if on_plan is not None and not TreatmentCourse.objects.filter(patient=on_plan).exists():
            therapy_plan_start(
                patient=on_plan, plan=TherapyPlan.objects.get(name=DEMO_PLAN), starts_at=now + timedelta(hours=30),
                user=users["onc.day"], now=now,
            )  # fmt: skip
            started += 2
        if len(team_b) > 2 and not TreatmentCourse.objects.filter(patient=team_b[2]).exists():
            course_start(patient=team_b[2], regimen=Regimen.objects.get(name=DEMO_STEP_UP),
                         starts_at=now + timedelta(hours=22), user=users["onc.cell"], now=now)  # fmt: skip
            started += 1
        return started

    def _blinatumomab_bags(self, patients: list[Patient], now: datetime) -> int:
        """A Cellular Therapy Unit patient (Romano, LF100008) on blinatumomab cycle 1 in 48 h bags since 23 h ago:
        bag 1 prepared by tech.ada, verified by tech.ben, released and hung by nurse.cell after the dexamethasone
        of the step's first bag (the seeded step's premedication, given 1 h before); hanging it moved bag 2 to when
        bag 1 runs out (the ward page: "bag 2 due …", and "in hospital until …" for the first 9 days). Bag 2 is
        prepared by tech.ada and waits for tech.ben's verification. Every step goes through the services at its
        own time. Once per patient: a re-run finds the course and adds nothing."""
        team_b = [p for p in patients if p.care_team.name == TEAMS[1][0]]
        if len(team_b) < 4 or TreatmentCourse.objects.filter(patient=team_b[3]).exists():
            return 0
        patient = team_b[3]
        names = ["onc.cell", "nurse.cell", "tech.ada", "tech.ben"]
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        hung = now - timedelta(hours=23)  # course_start refuses a start more than a day back
        course = course_start(patient=patient, regimen=Regimen.objects.get(name=DEMO_BAGS), starts_at=hung,
                              user=users["onc.cell"], now=now, bag_hours=48)  # fmt: skip
        bag_1, bag_2 = (self._live_preparation(course.doses.get(number=n)) for n in (1, 2))
        self._bag_prepared(bag_1, users["tech.ada"], hung - timedelta(minutes=90))
        self._bag_verified(bag_1, users["tech.ben"], hung - timedelta(minutes=45))
        bag_1 = Preparation.objects.select_related("dose__course").get(pk=bag_1.pk)
        step = dose_step(bag_1.dose)
        if step is None:  # the seeded first bag of cycle 1 is a step's first bag; fail closed if an admin changed it
            return 1
        outcome = preparation_administer(
            preparation=bag_1, wristband=patient.mrn, label=bag_1.code, user=users["nurse.cell"], now=hung,
            premedication_given_at=hung - timedelta(hours=1), premedication_note=step.premedication,
            premedication_classes=step.premedication_classes,
        )  # fmt: skip
        if outcome.matched:
            self._bag_prepared(bag_2, users["tech.ada"], now - timedelta(minutes=30))
        return 1

    @staticmethod
    def _live_preparation(dose: Dose) -> Preparation:
        return dose.preparations.filter(status__in=LIVE).get()

    @staticmethod
    def _bag_prepared(prep: Preparation, technician: User, at: datetime) -> None:
        """Started at `at`, recorded 20 min later (refrigerated, category 2) with the demo's bag volume; the vial is
        the seeded drug's (its storage note: the 35 µg vial)."""
        drug = prep.dose.course.regimen.drug
        expiry = at.date() + timedelta(days=365)
        components = [
            ComponentInput(ComponentKind.VIAL, f"{drug.name} 35 µg", "BL-DEMO-1", expiry, DEMO_BAG_VIAL_ML),
            ComponentInput(ComponentKind.DILUENT, drug.allowed_diluents[0], "NS-DEMO-1", expiry, DEMO_BAG_DILUENT_ML),
        ]
        preparation_start(preparation=prep, user=technician, now=at)
        preparation_record(
            preparation=prep, components=components, category="category_2", storage="refrigerated", user=technician,
            now=at + timedelta(minutes=20), bag_volume_ml=DEMO_BAG_ML,
        )  # fmt: skip

    @staticmethod
    def _bag_verified(prep: Preparation, checker: User, at: datetime) -> None:
        """Measured by the other technician (their demo password as the signature) and released 10 min later."""
        signing = HttpRequest()  # what django-axes counts a signature against: the demo's own address
        signing.method, signing.path = "POST", "/demo/"
        signing.META = {"REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost"}
        verified = preparation_verify(
            preparation=prep, user=checker, password=DEMO_PASSWORD, request=signing,
            method=VerificationMethod.VOLUMETRIC, measured=DEMO_BAG_ML, now=at,
        )  # fmt: skip
        preparation_release(preparation=verified, user=checker, now=at + timedelta(minutes=10))

    def _users(self, teams: list[CareTeam]) -> None:
        admin, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        admin.set_password(DEMO_PASSWORD)
        admin.save()
        people = [
            *((*u, CareTeamRole(u[3].value) if u[4] is not None else None) for u in USERS),
            *LADDER_USERS,
        ]
        for username, first, last, role, team_index, team_role in people:
            user, _ = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
            user.set_password(DEMO_PASSWORD)
            user.save()
            user.groups.add(Group.objects.get(name=role.label))
            if team_index is not None and team_role is not None:
                CareTeamMembership.objects.get_or_create(
                    care_team=teams[team_index], user=user, defaults={"role": team_role}
                )

    def _patients(self, teams: list[CareTeam], count: int, rng: random.Random) -> list[Patient]:
        rows = []
        for n in range(count):
            given, family, sex = PEOPLE[n % len(PEOPLE)]  # more than 50 patients repeat the names
            patient, _ = Patient.objects.get_or_create(
                mrn=f"LF{100001 + n}",
                defaults={
                    "family_name": family,
                    "given_name": given,
                    "birth_date": date(1940, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365)),
                    "sex": Sex(sex),
                    "weight_kg": Decimal(rng.randrange(450, 1100)) / 10,
                    "height_cm": Decimal(rng.randrange(1500, 1950)) / 10,
                    "care_team": teams[n % len(teams)],
                },
            )
            rows.append(patient)
        return rows

    @staticmethod
    def logins() -> list[tuple[str, str]]:
        ladder = [(username, team_role.label) for username, _, _, _, _, team_role in LADDER_USERS]
        return [("admin", "Admin")] + [(username, role.label) for username, _, _, role, _ in USERS] + ladder
