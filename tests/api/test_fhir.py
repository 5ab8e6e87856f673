"""FHIR views round-trip through fhir.resources (R4B models) validation."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.servicerequest import ServiceRequest

from apps.worklist.models import Case
from tests.api.conftest import report_sign, request_create
from tests.api.test_reports_studies import study_create


def fhir_get(client: Any, path: str, model: Any) -> Any:
    resp = client.get(f"/api/v1/fhir/{path}")
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"] == "application/fhir+json"
    resource = model.model_validate_json(resp.content)
    # Round trip: what the library serialises back equals what we served.
    assert json.loads(resource.model_dump_json(exclude_none=True)) == json.loads(resp.content)
    return resource


def test_service_request_imaging_study_diagnostic_report(world: Any) -> None:
    created = request_create(world, patient_ins="")
    case = Case.objects.get(public_id=created["id"])
    study = study_create(world, case)
    report_sign(case, world.users["radiologist"], addendum="Complément.")
    c = world.client("a_ro")
    sr = fhir_get(c, f"ServiceRequest/{created['id']}", ServiceRequest)
    assert sr.priority == "stat" and sr.status == "completed" and sr.intent == "order"
    assert sr.subject.display == "MARTIN Jeanne"
    assert any(i.value == "ACC-0001" for i in sr.identifier)
    img = fhir_get(c, f"ImagingStudy/{study.pk}", ImagingStudy)
    assert img.numberOfSeries == 2 and img.numberOfInstances == 5 and len(img.series) == 2
    assert img.basedOn[0].reference == f"ServiceRequest/{created['id']}"
    dr = fhir_get(c, f"DiagnosticReport/{created['id']}", DiagnosticReport)
    assert dr.status == "amended" and "Complément." in dr.conclusion
    assert dr.resultsInterpreter[0].reference == f"Practitioner/{world.users['radiologist'].pk}"


def test_organization_and_practitioner(world: Any) -> None:
    c = world.client("a_ro")
    org = fhir_get(c, f"Organization/{world.site_a.pk}", Organization)
    assert org.name == "CH Alpha" and org.identifier[0].value == world.site_a.finess
    prac = fhir_get(c, f"Practitioner/{world.users['radiologist'].pk}", Practitioner)
    assert prac.identifier[0].value == "10000000009"
    assert c.get("/api/v1/fhir/Practitioner/abc").status_code == 404


def test_patient_opposing_data_sharing_is_not_named(world: Any) -> None:
    created = request_create(world, opposes_data_sharing=True)
    sr = fhir_get(world.client("a_ro"), f"ServiceRequest/{created['id']}", ServiceRequest)
    assert "MARTIN" not in sr.model_dump_json() and "withheld" in sr.subject.display
    assert sr.contained is None


def test_fhir_scoped_to_the_establishment(world: Any) -> None:
    created = request_create(world)
    c = world.client("b_rw")
    assert c.get(f"/api/v1/fhir/ServiceRequest/{created['id']}").status_code == 404
    assert c.get(f"/api/v1/fhir/DiagnosticReport/{created['id']}").status_code == 404
    assert c.get("/api/v1/fhir/ServiceRequest/nope").status_code == 404


def test_the_patient_is_contained_with_the_used_name_as_usual_and_the_birth_name_as_official(world: Any) -> None:
    created = request_create(world, patient_birth_name="Martin", patient_used_name="Durand",
                             patient_first_names="Jeanne Marie")
    case = Case.objects.get(public_id=created["id"])
    report_sign(case, world.users["radiologist"])
    c = world.client("a_ro")
    for path, model in ((f"ServiceRequest/{created['id']}", ServiceRequest),
                        (f"DiagnosticReport/{created['id']}", DiagnosticReport)):
        resource = fhir_get(c, path, model)
        assert resource.subject.reference == "#patient"
        assert resource.subject.display == "MARTIN Jeanne Marie (DURAND)"
        (patient,) = resource.contained
        assert isinstance(patient, Patient) and patient.id == "patient"
        names = {n.use: n for n in patient.name}
        assert names["official"].family == "MARTIN" and names["official"].given == ["Jeanne", "Marie"]
        assert names["usual"].family == "DURAND" and names["usual"].given == ["Jeanne"]
        assert patient.gender == "female" and str(patient.birthDate) == "1948-03-02"


def test_without_a_used_name_the_patient_has_only_the_official_name(world: Any) -> None:
    created = request_create(world, patient_ins="")
    (patient,) = fhir_get(world.client("a_ro"), f"ServiceRequest/{created['id']}", ServiceRequest).contained
    assert [(n.use, n.family) for n in patient.name] == [("official", "MARTIN")]
    assert patient.identifier is None
