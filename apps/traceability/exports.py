"""Renderings of a tele-act record document (see selectors.teleact_record_build): JSON, PDF and FHIR R4B.

Pure functions of the document: whatever the document leaves out (a withheld identity) cannot leak here.
"""

from __future__ import annotations

import io
import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle

LOINC_RADIOLOGY_REPORT = "18748-4"  # Diagnostic imaging study


def record_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode()


def _practitioner_ref(person: dict[str, Any] | None) -> dict[str, Any] | None:
    if not person:
        return None
    ref: dict[str, Any] = {"display": person["name"]}
    if person.get("rpps"):
        ref["identifier"] = {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": person["rpps"]}  # RPPS
    return ref


def record_fhir_bundle(doc: dict[str, Any]) -> dict[str, Any]:
    """A FHIR R4B collection Bundle: one DiagnosticReport and one Provenance per act."""
    case = doc["case"]
    report = doc["report"] or {}
    dr_id = f"report-{case['id']}"
    patient = doc["patient"]
    if patient.get("withheld"):
        subject: dict[str, Any] = {"display": "withheld (patient opposes data sharing)"}
    else:
        subject = {"display": f"{patient['birth_name']} {patient['first_names']}"}
        if patient.get("ins"):
            subject["identifier"] = {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": patient["ins"]}  # INS-NIR
    dr: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": dr_id,
        "identifier": [{"system": "urn:pds-platform:case", "value": case["public_id"]}],
        "status": "final" if report.get("status") == "signed" else ("preliminary" if report else "registered"),
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                                  "display": "Radiology"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": LOINC_RADIOLOGY_REPORT}],
                 "text": f"{case['modality']} {case['exam']}"},
        "subject": subject,
    }
    if report.get("signed_at"):
        dr["issued"] = report["signed_at"]
        dr["effectiveDateTime"] = report["signed_at"]
    signer = _practitioner_ref(report.get("signed_by"))
    if signer:
        dr["resultsInterpreter"] = [signer]
    if report.get("conclusion"):
        dr["conclusion"] = report["conclusion"]
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{case['public_id']}", "resource": dr}]
    for n, act in enumerate(doc["acts"], start=1):
        agent = _practitioner_ref(act.get("by")) or {"display": "PDS Platform"}
        prov = {
            "resourceType": "Provenance", "id": f"act-{case['id']}-{n}",
            "target": [{"reference": f"DiagnosticReport/{dr_id}"}],
            "occurredDateTime": act["at"], "recorded": act["at"],
            "activity": {"text": f"{act['act']}: {act['label']}"},
            "agent": [{"who": agent}],
        }
        entries.append({"fullUrl": f"urn:pds-platform:act:{case['id']}:{n}", "resource": prov})
    for n, inc in enumerate(doc["incidents"], start=1):
        prov = {
            "resourceType": "Provenance", "id": f"incident-{case['id']}-{n}",
            "target": [{"reference": f"DiagnosticReport/{dr_id}"}],
            "recorded": inc["at"], "occurredDateTime": inc["at"],
            "activity": {"text": f"technical incident: {inc['label']}: {inc['summary']}"},
            "agent": [{"who": {"display": f"{inc['source']}"}}],
        }
        entries.append({"fullUrl": f"urn:pds-platform:incident:{case['id']}:{n}", "resource": prov})
    bundle = Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})
    return json.loads(bundle.model_dump_json(exclude_none=True))


def record_pdf(doc: dict[str, Any]) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    pdf = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            title=f"Tele-act record, case {doc['case']['public_id']}")
    case, patient, consent, report = doc["case"], doc["patient"], doc["consent"], doc["report"]
    p = lambda text, style="BodyText": Paragraph(escape(str(text)), styles[style])  # noqa: E731
    story: list[Any] = [p("Tele-act record (compte rendu d'acte de téléradiologie)", "Title"),
                        p(f"Case {case['public_id']} · {case['modality']} {case['exam']} · urgency {case['urgency']}"),
                        p(f"Requesting site: {case['requesting_site']['name']} "
                          f"(FINESS {case['requesting_site']['finess']})"),
                        Spacer(1, 4 * mm), p("Patient", "Heading2")]
    if patient.get("withheld"):
        story.append(p(patient["statement"]))
    else:
        story.append(p(f"{patient['birth_name']} {patient['first_names']} · sex {patient['sex']} · "
                       f"born {patient['birth_date']} · INS {patient['ins'] or '-'}"))
    story += [p(f"Consent: informed {consent['patient_informed']}; opposes tele-medicine "
                f"{consent['opposes_telemedicine']}; opposes data sharing {consent['opposes_data_sharing']}. "
                f"{consent['statement']}"), Spacer(1, 4 * mm), p("Report", "Heading2")]
    if report:
        for label in ("indication", "technique", "findings", "conclusion"):
            if report.get(label):
                story.append(p(f"{label.capitalize()}: {report[label]}"))
        signer = report.get("signed_by") or {}
        story.append(p(f"Status {report['status']}, signed {report['signed_at'] or '-'} by "
                       f"{signer.get('name', '-')} (RPPS {signer.get('rpps') or '-'})"))
        for a in report["addenda"]:
            story.append(p(f"Addendum {a['at']} by {a['by']['name']}: {a['text']}"))
    else:
        story.append(p("No report yet."))
    story += [Spacer(1, 4 * mm), p("Acts", "Heading2")]
    rows = [["When (UTC)", "Act", "Professional", "RPPS"]]
    for a in doc["acts"]:
        by = a.get("by") or {}
        rows.append([a["at"][:19], a["label"], by.get("name", "-"), by.get("rpps") or "-"])
    table = Table(rows, repeatRows=1, colWidths=[38 * mm, 62 * mm, 50 * mm, 28 * mm])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, "#888888"), ("FONTSIZE", (0, 0), (-1, -1), 8),
                               ("BACKGROUND", (0, 0), (-1, 0), "#dddddd")]))
    story += [table, Spacer(1, 4 * mm), p("Professionals", "Heading2")]
    for person in doc["professionals"]:
        story.append(p(f"{person['role']}: {person['name']} (RPPS {person['rpps'] or '-'})"))
    story += [Spacer(1, 4 * mm), p("Technical incidents", "Heading2")]
    if not doc["incidents"]:
        story.append(p("None recorded."))
    for inc in doc["incidents"]:
        story.append(p(f"{inc['at'][:19]} {inc['label']} ({inc['severity']}, {inc['source']}): {inc['summary']}"))
    pdf.build(story)
    return buf.getvalue()
