"""A collection covers only the tests in the collection window (overdue or due within
SPECIMEN_COLLECTION_WINDOW_HOURS, default 2 h); the list, the collect screen and the label show exactly those;
a rejection recollects exactly the tests the specimen carried; the chart records nothing without the scan."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alerts.choices import AlertKind
from alerts.models import Alert
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from specimens.labels import label_zpl
from specimens.models import Specimen
from specimens.selectors import collection_due_by, due_tests_for_patient, specimen_label
from specimens.services import specimen_reject, specimens_collect
from tests import factories

pytestmark = pytest.mark.django_db

EIGHT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the nurse's round; TIME_ZONE is UTC in the tests


@pytest.fixture(autouse=True)
def at_eight():
    with time_machine.travel(EIGHT, tick=False):
        yield


@pytest.fixture
def schedule(patient_a):
    """Overdue CMP (06:00), TSH due at 10:00 (the window's edge), CBC due at 10:30, TSH due tomorrow."""
    return {
        "cmp": factories.make_test(patient_a, due_at=EIGHT - timedelta(hours=2), grace=timedelta(0),
                                   name="Comprehensive metabolic panel"),
        "tsh": factories.make_test(patient_a, due_at=EIGHT + timedelta(hours=2), name="TSH"),
        "cbc": factories.make_test(patient_a, due_at=EIGHT + timedelta(hours=2, minutes=30),
                                   name="CBC with differential"),
        "tomorrow": factories.make_test(patient_a, due_at=EIGHT + timedelta(days=1), name="TSH"),
    }  # fmt: skip


def _status(test: MonitoringTest) -> str:
    test.refresh_from_db()
    return test.status


def test_window_ends_two_hours_after_now_by_default_and_is_configurable(settings):
    assert collection_due_by(EIGHT) == EIGHT + timedelta(hours=2)
    settings.SPECIMEN_COLLECTION_WINDOW_HOURS = 0.5
    assert collection_due_by(EIGHT) == EIGHT + timedelta(minutes=30)


def test_collection_at_eight_covers_only_tests_due_by_ten(nurse_a, patient_a, schedule):
    assert monitoring_tests_flag_overdue(now=EIGHT) != []  # the CMP is overdue
    due = list(due_tests_for_patient(user=nurse_a, patient=patient_a, due_by=collection_due_by(EIGHT)))
    assert due == [schedule["cmp"], schedule["tsh"]]

    specimens = specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=due, user=nurse_a,
                                  now=EIGHT)  # fmt: skip
    assert len(specimens) == 1
    assert set(specimens[0].monitoring_tests.all()) == {schedule["cmp"], schedule["tsh"]}
    assert _status(schedule["cmp"]) == _status(schedule["tsh"]) == MonitoringTestStatus.COLLECTED
    assert _status(schedule["cbc"]) == _status(schedule["tomorrow"]) == MonitoringTestStatus.SCHEDULED

    # the label lists exactly the tests the tube carries
    label = specimen_label(specimens[0])
    assert label.tests == ("Comprehensive metabolic panel", "TSH")
    printed = "".join(re.findall(r"\^FD(.*?)\^FS", label_zpl(label, tz=UTC))).replace(" ", "")
    assert "Comprehensivemetabolicpanel,TSH" in printed
    assert "+" not in printed


@pytest.mark.parametrize("later", ["cbc", "tomorrow"])
def test_a_test_due_after_the_window_is_refused_and_nothing_is_written(nurse_a, patient_a, schedule, later):
    tests = [schedule["cmp"], schedule[later]]
    with pytest.raises(ValidationError) as refused:
        specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=tests, user=nurse_a,
                          now=EIGHT)  # fmt: skip
    message = refused.value.message_dict["monitoring_tests"][0]
    assert schedule[later].lab_test.name in message
    assert f"{schedule[later].due_at:%Y-%m-%d %H:%M}" in message
    assert "2026-03-02 10:00" in message
    assert not Specimen.objects.exists()
    assert all(_status(t) in (MonitoringTestStatus.SCHEDULED, MonitoringTestStatus.OVERDUE) for t in tests)


def test_a_wider_window_covers_the_test_due_at_half_past_ten(settings, nurse_a, patient_a, schedule):
    settings.SPECIMEN_COLLECTION_WINDOW_HOURS = 3
    tests = [schedule["cmp"], schedule["cbc"]]
    specimens = specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=tests, user=nurse_a,
                                  now=EIGHT)  # fmt: skip
    assert len(specimens) == 2
    assert _status(schedule["tomorrow"]) == MonitoringTestStatus.SCHEDULED


def test_api_refuses_a_later_test_naming_monitoring_tests(api_as, nurse_a, patient_a, schedule):
    payload = {"patient": patient_a.pk, "wristband": patient_a.mrn,
               "monitoring_tests": [schedule["tsh"].pk, schedule["tomorrow"].pk]}  # fmt: skip
    response = api_as(nurse_a).post("/api/specimens/collect/", payload, format="json")
    assert response.status_code == 400
    assert "Not due for collection yet: TSH" in response.json()["monitoring_tests"][0]
    assert not Specimen.objects.exists()

    payload["monitoring_tests"] = [schedule["cmp"].pk, schedule["tsh"].pk]
    response = api_as(nurse_a).post("/api/specimens/collect/", payload, format="json")
    assert response.status_code == 201, response.content
    (specimen,) = response.json()
    assert sorted(specimen["monitoring_tests"]) == sorted([schedule["cmp"].pk, schedule["tsh"].pk])


def test_collection_list_shows_only_tests_in_the_window(api_as, client, nurse_a, patient_a, schedule):
    body = api_as(nurse_a).get("/api/collection-list/", {"ward": "Ward 4A"}).json()
    (draw,) = body
    ids = [test["id"] for tube in draw["tubes"] for test in tube["tests"]]
    assert sorted(ids) == sorted([schedule["cmp"].pk, schedule["tsh"].pk])

    client.force_login(nurse_a)
    page = client.get("/specimens/collection/", {"ward": "Ward 4A"}).content.decode()
    assert "Comprehensive metabolic panel" in page
    assert "CBC with differential" not in page
    assert "due by 2026-03-02 10:00" in page


def test_collect_screen_offers_only_tests_in_the_window(client, nurse_a, patient_a, schedule):
    client.force_login(nurse_a)
    url = f"/specimens/collect/{patient_a.pk}/"
    page = client.get(url).content.decode()
    offered = {schedule[k].pk for k in schedule if f'name="tests" value="{schedule[k].pk}"' in page}
    assert offered == {schedule["cmp"].pk, schedule["tsh"].pk}
    assert "2 later tests not due yet (next: CBC with differential due 2026-03-02 10:30) stay open." in page

    # a later test posted anyway is not collected
    response = client.post(url, {"wristband": patient_a.mrn, "tests": [schedule["cbc"].pk]})
    assert response.status_code == 400
    assert "Choose at least one due test" in response.content.decode()
    response = client.post(url, {"wristband": patient_a.mrn, "tests": [s.pk for s in schedule.values()]})
    assert response.status_code == 200
    assert _status(schedule["cbc"]) == _status(schedule["tomorrow"]) == MonitoringTestStatus.SCHEDULED
    assert set(Specimen.objects.get().monitoring_tests.all()) == {schedule["cmp"], schedule["tsh"]}


def test_rejection_recollects_exactly_the_tests_the_specimen_carried(nurse_a, technician, patient_a, schedule):
    carried = [schedule["cmp"], schedule["tsh"]]
    (specimen,) = specimens_collect(patient=patient_a, wristband=patient_a.mrn, monitoring_tests=carried,
                                    user=nurse_a, now=EIGHT)  # fmt: skip
    before = set(MonitoringTest.objects.values_list("pk", flat=True))
    specimen_reject(specimen=specimen, reason="RH", comment="", user=technician, now=EIGHT + timedelta(hours=1))

    new = MonitoringTest.objects.exclude(pk__in=before)
    assert {t.recollection_of_id for t in new} == {t.pk for t in carried}
    assert new.count() == len(carried)
    assert all(t.status == MonitoringTestStatus.SCHEDULED and t.due_at == EIGHT + timedelta(hours=1) for t in new)
    assert _status(schedule["cmp"]) == _status(schedule["tsh"]) == MonitoringTestStatus.RECOLLECT
    assert _status(schedule["cbc"]) == _status(schedule["tomorrow"]) == MonitoringTestStatus.SCHEDULED
    alert = Alert.objects.get(kind=AlertKind.SPECIMEN_REJECTED)
    assert alert.summary == "Gold top SST specimen rejected (Hemolysis): recollect Comprehensive metabolic panel, TSH"


def test_a_test_carried_twice_is_named_once_on_the_label(nurse_a, patient_a, schedule):
    overdue_tsh = factories.make_test(patient_a, due_at=EIGHT - timedelta(days=3), name="TSH")
    (specimen,) = specimens_collect(patient=patient_a, wristband=patient_a.mrn, user=nurse_a, now=EIGHT,
                                    monitoring_tests=[overdue_tsh, schedule["tsh"]])  # fmt: skip
    assert specimen.monitoring_tests.count() == 2
    assert specimen_label(specimen).tests == ("TSH",)


# --- The chart records nothing without the wristband scan -------------------------------------------------------


def test_chart_links_to_the_collect_screen_and_has_no_direct_collection(client, api_as, nurse_a, patient_a, schedule):
    client.force_login(nurse_a)
    page = client.get(f"/patients/{patient_a.pk}/").content.decode()
    collect = f'href="/specimens/collect/{patient_a.pk}/"'
    assert "Specimen collected" not in page
    assert "/collected/" not in page
    table = page[page.index('data-testid="monitoring-tests"') :]
    assert "<form" not in table[: table.index("</table>")]
    assert page.count('data-testid="collect-link"') == 2  # the CMP and the TSH due by 10:00, not the later ones
    assert page.count(collect) == 3  # those two and "Collect due tests (2)"
    assert "Collect due tests (2)" in page

    # the old one-click endpoints are gone
    test = schedule["cmp"]
    assert client.post(f"/monitoring/tests/{test.pk}/collected/").status_code == 404
    assert api_as(nurse_a).post(f"/api/monitoring-tests/{test.pk}/collected/").status_code in (404, 405)
    assert _status(test) == MonitoringTestStatus.SCHEDULED
    assert not Specimen.objects.exists()
