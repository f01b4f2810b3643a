"""Specimens: accession check digit, tubes and order of draw, collect, receive, reject, custody, result stage."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from alerts.choices import AlertKind, AlertStatus, ResolutionReason
from alerts.models import Alert
from monitoring.choices import MonitoringTestStatus
from monitoring.models import MonitoringTest
from monitoring.services import monitoring_tests_flag_overdue
from specimens.choices import CustodyEventKind, SpecimenStatus
from specimens.models import CustodyEvent, Specimen
from specimens.selectors import tubes_for
from specimens.services import accession_is_valid, accession_number_next
from tests import factories

pytestmark = pytest.mark.django_db


def _due(patient, *names, minutes_ago=0):
    return [
        factories.make_test(patient, due_at=timezone.now() - timedelta(minutes=minutes_ago), grace=timedelta(0), name=n)
        for n in names
    ]


def _collect(client, patient, tests, wristband=None):
    payload = {"patient": patient.pk, "wristband": wristband or patient.mrn, "monitoring_tests": [t.pk for t in tests]}
    return client.post("/api/specimens/collect/", payload, format="json")


def test_accession_check_digit_detects_single_digit_errors_and_adjacent_swaps():
    accession = accession_number_next()
    assert len(accession) == 10
    assert accession_is_valid(accession)
    for i in range(10):
        for digit in "0123456789":
            if digit != accession[i]:
                assert not accession_is_valid(accession[:i] + digit + accession[i + 1 :])
    for i in range(9):
        swapped = accession[:i] + accession[i + 1] + accession[i] + accession[i + 2 :]
        if swapped != accession:
            assert not accession_is_valid(swapped)
    for body in ("000000090", "123456789", "000001009"):  # swaps that defeat Luhn (09 <-> 90) are caught too
        from stdnum import damm

        number = body + damm.calc_check_digit(body)
        assert not accession_is_valid(number.replace("09", "90", 1)) or "09" not in number


def test_pre_dose_panel_draws_gold_then_lavender(patient_a):
    tests = _due(patient_a, "CBC with differential", "Comprehensive metabolic panel", "TSH")
    tubes = tubes_for(tests)
    assert [tube.container.code if tube.container else None for tube in tubes] == ["GOLD_SST", "LAV_EDTA"]  # CLSI order
    assert [t.lab_test.name for t in tubes[0].tests] == ["Comprehensive metabolic panel", "TSH"]
    assert [t.lab_test.name for t in tubes[1].tests] == ["CBC with differential"]


def test_collection_list_groups_by_patient_in_order_of_draw(api_as, nurse_a, team_a, patient_a):
    other = factories.make_patient(team_a)
    _due(patient_a, "CBC with differential", "Comprehensive metabolic panel", "TSH", "INR")
    _due(other, "TSH")
    factories.make_test(patient_a, due_at=timezone.now() + timedelta(days=2), name="ALT")  # outside the window
    body = api_as(nurse_a).get("/api/collection-list/", {"ward": "Ward 4A"}).json()
    by_patient = {row["patient"]: row for row in body}
    assert set(by_patient) == {patient_a.pk, other.pk}
    tubes = by_patient[patient_a.pk]["tubes"]
    assert [t["container"]["code"] for t in tubes] == ["BLUE_CIT", "GOLD_SST", "LAV_EDTA"]
    assert [len(t["tests"]) for t in tubes] == [1, 2, 1]
    assert tubes[1]["min_volume_ml"] == "1.0"


def test_collecting_creates_one_specimen_per_tube_and_resolves_overdue_alerts(api_as, nurse_a, patient_a):
    tests = _due(patient_a, "CBC with differential", "Comprehensive metabolic panel", "TSH", minutes_ago=30)
    alert_ids = monitoring_tests_flag_overdue()
    assert len(alert_ids) == 3

    response = _collect(api_as(nurse_a), patient_a, tests)
    assert response.status_code == 201, response.content
    specimens = response.json()
    assert [s["container"]["code"] for s in specimens] == ["GOLD_SST", "LAV_EDTA"]
    assert all(accession_is_valid(s["accession"]) for s in specimens)
    assert [e["kind"] for e in specimens[0]["custody_events"]] == ["collected"]
    for test in tests:
        test.refresh_from_db()
        assert test.status == MonitoringTestStatus.COLLECTED
        assert test.collected_by == nurse_a
        assert test.result_deadline == test.collected_at + test.lab_test.turnaround
    for alert in Alert.objects.filter(pk__in=alert_ids):
        assert alert.status == AlertStatus.RESOLVED
        assert alert.resolution_reason == ResolutionReason.SPECIMEN_COLLECTED


def test_wristband_mismatch_stops_and_writes_nothing(api_as, nurse_a, patient_a, team_a):
    other = factories.make_patient(team_a)
    tests = _due(patient_a, "TSH")
    response = _collect(api_as(nurse_a), patient_a, tests, wristband=other.mrn)
    assert response.status_code == 400
    assert "does not match" in response.json()["wristband"][0]
    assert not Specimen.objects.exists()
    tests[0].refresh_from_db()
    assert tests[0].status == MonitoringTestStatus.SCHEDULED


def test_collecting_a_test_that_is_not_due_is_refused(api_as, nurse_a, patient_a):
    tests = _due(patient_a, "TSH")
    assert _collect(api_as(nurse_a), patient_a, tests).status_code == 201
    again = _collect(api_as(nurse_a), patient_a, tests)
    assert again.status_code == 409
    assert Specimen.objects.count() == 1


def test_another_patients_test_cannot_be_collected(api_as, nurse_a, patient_a, team_a):
    other = factories.make_patient(team_a)
    response = _collect(api_as(nurse_a), patient_a, _due(other, "TSH"))
    assert response.status_code == 400
    assert "another patient" in response.json()["monitoring_tests"][0]


def test_result_overdue_alert_after_collection_when_no_result_arrives(api_as, nurse_a, patient_a):
    (test,) = _due(patient_a, "TSH")
    _collect(api_as(nurse_a), patient_a, [test])
    test.refresh_from_db()
    assert monitoring_tests_flag_overdue(now=test.result_deadline - timedelta(seconds=1)) == []
    (alert_id,) = monitoring_tests_flag_overdue(now=test.result_deadline)
    alert = Alert.objects.get(pk=alert_id)
    assert alert.kind == AlertKind.RESULT_OVERDUE
    assert alert.summary == "Result overdue: TSH"
    test.refresh_from_db()
    assert test.status == MonitoringTestStatus.RESULT_OVERDUE
    assert monitoring_tests_flag_overdue(now=test.result_deadline + timedelta(hours=1)) == []
    # distinct from the collection-overdue kind: never both for the same stage
    assert not Alert.objects.filter(kind=AlertKind.COLLECTION_OVERDUE).exists()


def test_receipt_by_scan_and_bad_scans(api_as, nurse_a, technician, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH")).json()
    lab = api_as(technician)
    accession = specimen["accession"]
    typo = accession[:-2] + accession[-1] + accession[-2]
    if typo != accession:
        response = lab.post("/api/specimens/receive/", {"accession": typo}, format="json")
        assert response.status_code == 400
        assert "check digit" in response.json()["accession"][0]
    from stdnum import damm

    unknown = "999999999" + damm.calc_check_digit("999999999")
    response = lab.post("/api/specimens/receive/", {"accession": unknown}, format="json")
    assert response.status_code == 400
    assert "No specimen" in response.json()["accession"][0]

    response = lab.post("/api/specimens/receive/", {"accession": accession, "condition": "ROOM"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == SpecimenStatus.RECEIVED
    assert body["received_by"] == technician.pk
    assert body["stability_exceeded"] is False

    again = lab.post("/api/specimens/receive/", {"accession": accession}, format="json")
    assert again.status_code == 409
    assert "already received" in again.json()["detail"]
    assert CustodyEvent.objects.filter(kind=CustodyEventKind.RECEIVED).count() == 1


def test_receipt_past_stability_is_flagged(api_as, nurse_a, technician, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "Potassium")).json()
    with time_machine.travel(timezone.now() + timedelta(hours=2, minutes=5)):  # serum: 2 h at room temperature
        response = api_as(technician).post("/api/specimens/receive/", {"accession": specimen["accession"]})
    assert response.status_code == 200
    assert response.json()["stability_exceeded"] is True
    assert "past stability" in response.json()["custody_events"][-1]["note"]


def test_refrigerated_receipt_uses_refrigerated_stability(api_as, nurse_a, technician, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "Potassium")).json()
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        response = api_as(technician).post(
            "/api/specimens/receive/", {"accession": specimen["accession"], "condition": "COOL"}
        )
    assert response.json()["stability_exceeded"] is False


def test_rejection_makes_tests_due_again_and_raises_one_alert(api_as, nurse_a, technician, patient_a):
    tests = _due(patient_a, "Comprehensive metabolic panel", "TSH")
    (specimen,) = _collect(api_as(nurse_a), patient_a, tests).json()
    lab = api_as(technician)
    response = lab.post(f"/api/specimens/{specimen['id']}/reject/", {"reason": "RH", "comment": "grossly haemolysed"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    assert response.json()["rejection_reason"] == "RH"

    for test in tests:
        test.refresh_from_db()
        assert test.status == MonitoringTestStatus.RECOLLECT
        new = test.recollection
        assert new.status == MonitoringTestStatus.SCHEDULED
        assert new.lab_test == test.lab_test
        assert new.deadline == new.due_at + timedelta(hours=1)
    alerts = Alert.objects.filter(kind=AlertKind.SPECIMEN_REJECTED)
    assert alerts.count() == 1
    assert alerts.get().patient == patient_a
    assert "Hemolysis" in alerts.get().summary

    assert lab.post(f"/api/specimens/{specimen['id']}/reject/", {"reason": "RC"}).status_code == 409
    assert Alert.objects.filter(kind=AlertKind.SPECIMEN_REJECTED).count() == 1
    assert Specimen.objects.filter(pk=specimen["id"]).exists()  # stays on record

    # the recollection is its own condition: one draw of both tests, one overdue alert naming both when late
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        raised = monitoring_tests_flag_overdue(now=timezone.now())
    assert len(raised) == 1
    overdue = Alert.objects.get(pk=raised[0])
    assert overdue.kind == AlertKind.COLLECTION_OVERDUE
    assert sorted(overdue.members) == sorted(
        t.recollection.pk for t in MonitoringTest.objects.filter(pk__in=[t.pk for t in tests])
    )
    assert lab.post("/api/specimens/receive/", {"accession": specimen["accession"]}).status_code != 200


def test_rejection_needs_a_known_hl7_reason(api_as, nurse_a, technician, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH")).json()
    response = api_as(technician).post(f"/api/specimens/{specimen['id']}/reject/", {"reason": "XX"})
    assert response.status_code == 400
    assert "reason" in response.json()
    assert Specimen.objects.get(pk=specimen["id"]).status == SpecimenStatus.COLLECTED


def test_nurse_cannot_receive_or_reject(api_as, nurse_a, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH")).json()
    client = api_as(nurse_a)
    assert client.post("/api/specimens/receive/", {"accession": specimen["accession"]}).status_code == 403
    assert client.post(f"/api/specimens/{specimen['id']}/reject/", {"reason": "RH"}).status_code == 403


def test_custody_trail_and_transitions(api_as, nurse_a, technician, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH")).json()
    url = f"/api/specimens/{specimen['id']}/custody/"
    assert api_as(nurse_a).post(url, {"kind": "in_transit", "location": "Tube station 4A"}).status_code == 201
    lab = api_as(technician)
    assert lab.post(url, {"kind": "stored"}).status_code == 409  # not received yet
    lab.post("/api/specimens/receive/", {"accession": specimen["accession"]})
    assert lab.post(url, {"kind": "aliquoted"}).status_code == 201
    assert lab.post(url, {"kind": "stored", "location": "Fridge 2"}).status_code == 201
    assert lab.post(url, {"kind": "received"}).status_code == 400  # only through the receive scan
    assert lab.post(url, {"kind": "disposed"}).status_code == 201
    kinds = [e["kind"] for e in lab.get(f"/api/specimens/{specimen['id']}/").json()["custody_events"]]
    assert kinds == ["collected", "in_transit", "received", "aliquoted", "stored", "disposed"]
    page = lab.get(f"/specimens/{specimen['id']}/")
    assert page.status_code == 200
    assert "Fridge 2" in page.content.decode()


def test_label_prints_and_reprints_are_logged(api_as, nurse_a, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH")).json()
    client = api_as(nurse_a)
    pdf = client.get(f"/api/specimens/{specimen['id']}/label/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    zpl = client.get(f"/api/specimens/{specimen['id']}/label/zpl/")
    assert zpl.content.decode().startswith("^XA")
    assert f"^FD{specimen['accession']}^FS" in zpl.content.decode()
    kinds = list(CustodyEvent.objects.filter(specimen_id=specimen["id"]).values_list("kind", flat=True))
    assert kinds == ["collected", "label_printed", "label_reprinted"]


def test_other_teams_specimen_is_404(api_as, nurse_a, nurse_b, patient_a):
    (specimen,) = _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH")).json()
    client = api_as(nurse_b)
    assert client.get(f"/api/specimens/{specimen['id']}/").status_code == 404
    assert client.get(f"/api/specimens/{specimen['id']}/label/pdf/").status_code == 404
    assert client.get("/api/specimens/").json()["count"] == 0


def test_custody_events_are_append_only(api_as, nurse_a, patient_a):
    from django.db import DatabaseError, transaction

    _collect(api_as(nurse_a), patient_a, _due(patient_a, "TSH"))
    with pytest.raises(DatabaseError), transaction.atomic():
        CustodyEvent.objects.update(note="changed")
    with pytest.raises(DatabaseError), transaction.atomic():
        Specimen.objects.all().delete()
    assert MonitoringTest.objects.count() == 1
