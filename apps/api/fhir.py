"""FHIR R4 views of our objects, built as plain dicts and validated by fhir.resources (R4B models,
R4-compatible). A resource that fails validation is a bug on our side, not bad input."""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.servicerequest import ServiceRequest

FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
REQUEST_SYSTEM = "urn:pds-platform:request"
DICOM_UID_SYSTEM = "urn:dicom:uid"
ACCESSION_CODE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}
PRIORITY = {"vital": "stat", "urgent": "urgent", "deferred": "routine"}
SR_STATUS = {"awaiting_validation": "draft", "info_requested": "on-hold", "accepted": "active",
             "awaiting_reading": "active", "in_progress": "active", "reported": "completed",
             "refused": "revoked", "cancelled": "revoked", "redirected": "revoked"}
DICOM_MODALITY = {"CT": "CT", "MR": "MR", "XR": "DX", "US": "US"}
GENDER = {"F": "female", "M": "male", "U": "unknown"}
PATIENT_ID = "patient"  # the id of the Patient contained in a resource about one case


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _prune(value: Any) -> Any:
    """FHIR forbids empty strings, lists and objects: drop them (and None) everywhere."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in (_prune(v) for v in value) if v not in (None, "", [], {})]
    if isinstance(value, str):
        return _CONTROL.sub("", value).strip()
    return value


def _validated(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    return model.model_validate(_prune(data)).model_dump(mode="json", exclude_none=True)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _patient_ref(case: Any) -> dict[str, Any]:
    """Reference to the patient contained in the resource (``#patient``): identity only when sharing is not
    opposed."""
    if case.opposes_data_sharing:
        return {"display": "Patient (identity withheld: opposes data sharing)"}
    ref: dict[str, Any] = {"reference": f"#{PATIENT_ID}", "display": _patient_text(case)}
    if case.patient_ins:
        ref["identifier"] = {"system": INS_SYSTEM, "value": case.patient_ins}
    return ref


def _patient_text(case: Any) -> str:
    text = f"{case.patient_birth_name.upper()} {case.patient_first_names}".strip()
    used = case.patient_used_name.strip().upper()
    if used and used != case.patient_birth_name.strip().upper():
        text += f" ({used})"
    return text


def patient(case: Any) -> dict[str, Any]:
    """The patient as the request identified them, after FR Core practice for INS identity traits: the birth
    name and birth first names are the ``official`` name, the used name (nom d'usage) when there is one the
    ``usual`` name (with the first of the first names, the one a person is called by)."""
    first_names = case.patient_first_names.split()
    names: list[dict[str, Any]] = [{"use": "official", "family": case.patient_birth_name.upper(),
                                    "given": first_names or None}]
    used = case.patient_used_name.strip()
    if used:
        names.append({"use": "usual", "family": used.upper(), "given": first_names[:1] or None})
    data: dict[str, Any] = {
        "resourceType": "Patient", "id": PATIENT_ID, "name": names,
        "gender": GENDER.get(case.patient_sex, "unknown"), "birthDate": _iso(case.patient_birth_date),
        "identifier": [{"system": INS_SYSTEM, "value": case.patient_ins}] if case.patient_ins else None,
    }
    return _validated(Patient, data)


def _contained(case: Any) -> list[dict[str, Any]] | None:
    """The contained Patient, unless the patient opposes data sharing (then nothing names them)."""
    return None if case.opposes_data_sharing else [patient(case)]


def organization(establishment: Any) -> dict[str, Any]:
    return _validated(Organization, {
        "resourceType": "Organization", "id": str(establishment.pk), "active": bool(establishment.active),
        "identifier": [{"system": FINESS_SYSTEM, "value": establishment.finess}],
        "name": establishment.name,
        "address": [{"text": establishment.address, "city": establishment.city}] if establishment.city else None,
    })


def practitioner(user: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Practitioner", "id": str(user.pk), "active": bool(user.is_active),
        "name": [{"family": user.last_name or user.username, "given": [user.first_name] if user.first_name else None,
                  "text": user.display_name}],
    }
    if user.rpps:
        data["identifier"] = [{"system": RPPS_SYSTEM, "value": user.rpps}]
    return _validated(Practitioner, data)


def service_request(case: Any) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [{"system": REQUEST_SYSTEM, "value": str(case.public_id)}]
    if case.accession_number:
        identifiers.append({"type": ACCESSION_CODE, "value": case.accession_number})
    data: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": str(case.public_id), "contained": _contained(case),
        "identifier": identifiers,
        "status": SR_STATUS.get(case.status, "unknown"), "intent": "order",
        "priority": PRIORITY.get(case.urgency, "routine"),
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005",
                                  "display": "Imaging"}]}],
        "code": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                             "code": DICOM_MODALITY.get(case.modality_id, case.modality_id)}],
                 "text": case.exam},
        "subject": _patient_ref(case),
        "authoredOn": _iso(case.requested_at),
        "requester": {"reference": f"Organization/{case.site_id}"},
        "reasonCode": [{"text": case.clinical_question}],
        "note": [{"text": case.clinical_context}] if case.clinical_context else None,
    }
    if case.assigned_to_id:
        data["performer"] = [{"reference": f"Practitioner/{case.assigned_to_id}"}]
    return _validated(ServiceRequest, data)


def imaging_study(study: Any) -> dict[str, Any]:
    status = "available" if study.status != "receiving" else "registered"
    series = []
    for s in study.series.all():
        series.append({"uid": s.series_uid, "number": s.number if s.number is not None and s.number >= 0 else None,
                       "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                                    "code": (s.modality or study.modality or "OT").split("\\")[0]},
                       "description": s.description or None, "numberOfInstances": s.num_instances})
    case = study.case
    data: dict[str, Any] = {
        "resourceType": "ImagingStudy", "id": str(study.pk), "status": status,
        "contained": _contained(case) if case is not None else None,
        "identifier": [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study.study_uid}"}],
        "subject": _patient_ref(case) if case is not None else {"display": "Patient"},
        "started": _iso(study.study_datetime),
        "numberOfSeries": study.num_series, "numberOfInstances": study.num_instances,
        "description": study.description or None,
        "series": series or None,
    }
    if case is not None:
        data["basedOn"] = [{"reference": f"ServiceRequest/{case.public_id}"}]
    return _validated(ImagingStudy, data)


def diagnostic_report(report: Any) -> dict[str, Any]:
    case = report.case
    conclusion = report.conclusion
    addenda = list(report.addenda.all())
    if addenda:
        conclusion += "".join(f"\n\nAddendum ({a.signed_at:%Y-%m-%d %H:%M} UTC): {a.text}" for a in addenda)
    data: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": str(case.public_id), "contained": _contained(case),
        "status": ("amended" if addenda else "final") if report.status == "signed" else "preliminary",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": case.exam},
        "subject": _patient_ref(case),
        "basedOn": [{"reference": f"ServiceRequest/{case.public_id}"}],
        "issued": _iso(report.signed_at),
        "effectiveDateTime": _iso(case.images_complete_at or case.requested_at),
        "resultsInterpreter": [{"reference": f"Practitioner/{report.signed_by_id or report.author_id}"}],
        "performer": [{"reference": f"Organization/{case.site_id}"}],
        "conclusion": conclusion or None,
        "presentedForm": None,
    }
    text = "\n\n".join(p for p in (report.indication, report.technique, report.findings) if p)
    if text:
        import base64

        data["presentedForm"] = [{"contentType": "text/plain; charset=utf-8",
                                  "data": base64.b64encode(text.encode()).decode(), "title": "Report"}]
    return _validated(DiagnosticReport, data)
