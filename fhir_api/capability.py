"""The CapabilityStatement at /fhir/metadata: what this server reads and searches, derived from the same tables
the views use, so it cannot claim a parameter the search refuses."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from fhir_api.selectors import SEARCHABLE

# Written when the API was last changed; a CapabilityStatement's date is when it was published.
PUBLISHED = "2026-12-01"
PARAM_TYPES = {
    "_id": ("token", "The resource's logical id."),
    "patient": ("reference", "The patient: an id or Patient/<id>."),
    "subject": ("reference", "The patient: an id or Patient/<id>."),
    "code": ("token", "LOINC code, as http://loinc.org|<code> or <code>."),
    "date": (
        "date",
        "When observed (Observation), collected (DiagnosticReport, Specimen), due (ServiceRequest), raised (Flag), "
        "planned (MedicationRequest) or started (MedicationAdministration); "
        "prefixes eq, ge, le, gt, lt.",
    ),
    "collected": ("date", "When the specimen was collected; prefixes eq, ge, le, gt, lt."),
    "status": ("token", "The resource's status."),
}


def capability_statement(request: Request) -> dict[str, Any]:
    return {
        "status": "active",
        "date": PUBLISHED,
        "publisher": "LabFlow",
        "kind": "instance",
        "software": {"name": "LabFlow"},
        "implementation": {
            "description": "LabFlow FHIR R4 read and search API",
            "url": request.build_absolute_uri("/fhir"),
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Read-only. Every request is authenticated as in the REST API and sees only the "
                "user's care teams' patients (lab staff: every patient); other resources answer 404.",
                "security": {
                    "cors": False,
                    "description": "Authorization: Token <knox token from POST /api/auth/login/>, or a session.",
                },
                "resource": [
                    {
                        "type": kind,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": name, "type": PARAM_TYPES[name][0], "documentation": PARAM_TYPES[name][1]}
                            for name in searchable.params
                        ]
                        + [{"name": "_count", "type": "number", "documentation": "Page size, 1-100 (default 50)."}],
                    }
                    for kind, searchable in SEARCHABLE.items()
                ],
            }
        ],
    }
