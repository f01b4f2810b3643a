"""The specimen web UI: collection list, scanner-first collect, receiving, specimen page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from specimens.models import Specimen
from tests import factories

pytestmark = pytest.mark.django_db


def _due(patient, *names):
    return [factories.make_test(patient, due_at=timezone.now(), grace=timedelta(0), name=n) for n in names]


def test_collection_list_page_shows_tubes_in_order_of_draw(client, nurse_a, patient_a, patient_b):
    _due(patient_a, "CBC with differential", "TSH")
    _due(patient_b, "TSH")
    client.force_login(nurse_a)
    page = client.get("/specimens/collection/", {"ward": "Ward 4A"}).content.decode()
    assert patient_a.mrn in page
    assert patient_b.mrn not in page  # another team's ward is not offered
    assert page.index("Gold top SST") < page.index("Lavender top")
    assert "Print" in page


def test_collect_page_stops_on_wristband_mismatch_then_collects(client, nurse_a, patient_a):
    tests = _due(patient_a, "CBC with differential", "TSH")
    client.force_login(nurse_a)
    url = f"/specimens/collect/{patient_a.pk}/"
    assert "autofocus" in client.get(url).content.decode()
    wrong = client.post(url, {"wristband": "WRONG-MRN", "tests": [t.pk for t in tests]})
    assert wrong.status_code == 400
    assert "does not match" in wrong.content.decode()
    assert not Specimen.objects.exists()
    done = client.post(url, {"wristband": patient_a.mrn.lower(), "tests": [t.pk for t in tests]})
    assert done.status_code == 200
    specimens = list(Specimen.objects.order_by("container__draw_order"))
    assert len(specimens) == 2
    assert all(s.accession in done.content.decode() for s in specimens)


def test_receive_screen_scan_after_scan(client, nurse_a, technician, patient_a):
    client.force_login(nurse_a)
    client.post(
        f"/specimens/collect/{patient_a.pk}/", {"wristband": patient_a.mrn, "tests": [_due(patient_a, "TSH")[0].pk]}
    )
    accession = Specimen.objects.get().accession
    client.force_login(technician)
    first = client.post("/specimens/receive/", {"accession": accession, "condition": "ROOM"}, HTTP_HX_REQUEST="true")
    assert first.status_code == 200
    body = first.content.decode()
    assert f"Received {accession}" in body
    assert "autofocus" in body
    assert 'value="' + accession not in body
    second = client.post("/specimens/receive/", {"accession": accession, "condition": "ROOM"}, HTTP_HX_REQUEST="true")
    assert second.status_code == 409
    assert "already received" in second.content.decode()


def test_specimen_page_timeline_and_reject_dialog(client, nurse_a, technician, patient_a):
    client.force_login(nurse_a)
    client.post(
        f"/specimens/collect/{patient_a.pk}/", {"wristband": patient_a.mrn, "tests": [_due(patient_a, "TSH")[0].pk]}
    )
    specimen = Specimen.objects.get()
    client.force_login(technician)
    page = client.get(f"/specimens/{specimen.pk}/").content.decode()
    assert "Custody trail" in page
    assert "Collected" in page
    assert "Reject specimen" in page
    response = client.post(f"/specimens/{specimen.pk}/reject/", {"reason": "QS", "comment": "half-filled"})
    assert response.status_code == 302
    page = client.get(f"/specimens/{specimen.pk}/").content.decode()
    assert "Quantity not sufficient" in page
    assert "half-filled" in page
    assert "Reject specimen" not in page


def test_nurse_has_no_receive_screen(client, nurse_a):
    client.force_login(nurse_a)
    assert client.get("/specimens/receive/").status_code == 403
