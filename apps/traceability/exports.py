"""Renderings of a tele-act record document (see selectors.teleact_record_build): JSON, PDF and FHIR R4B.

Pure functions of the document: whatever the document leaves out (a withheld identity) cannot leak here.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.utils.translation import gettext as _
from fhir.resources.R4B.bundle import Bundle

from apps.traceability.labels import record_display, urgency_label

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
    """The record for people: labels in the active language, times in Europe/Paris (apps.traceability.labels)."""
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    shown = record_display(doc)
    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    pdf = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            title=_("Tele-act record, case %(id)s") % {"id": doc["case"]["public_id"]})
    case, patient, consent, report = shown["case"], shown["patient"], shown["consent"], shown["report"]
    p = lambda text, style="BodyText": Paragraph(escape(str(text)), styles[style])  # noqa: E731
    yes_no = lambda v: _("yes") if v else _("no")  # noqa: E731
    story: list[Any] = [
        p(_("Tele-act record"), "Title"),
        p(_("Case %(id)s · %(modality)s %(exam)s · urgency: %(urgency)s") % {
            "id": case["public_id"], "modality": case["modality"], "exam": case["exam"],
            "urgency": urgency_label(case["urgency"])}),
        p(_("Requesting site: %(site)s (FINESS %(finess)s)") % {
            "site": case["requesting_site"]["name"], "finess": case["requesting_site"]["finess"]}),
        Spacer(1, 4 * mm), p(_("Patient"), "Heading2")]
    if patient.get("withheld"):
        story.append(p(patient["statement"]))
    else:
        story.append(p(_("%(name)s · sex %(sex)s · born on %(born)s · INS %(ins)s") % {
            "name": f"{patient['birth_name']} {patient['first_names']}", "sex": patient["sex"],
            "born": patient["birth_date_display"], "ins": patient["ins"] or "-"}))
    story += [p(_("Consent: patient informed: %(informed)s; opposes tele-medicine: %(tele)s; opposes data "
                  "sharing: %(sharing)s. %(statement)s") % {
                "informed": yes_no(consent["patient_informed"]), "tele": yes_no(consent["opposes_telemedicine"]),
                "sharing": yes_no(consent["opposes_data_sharing"]), "statement": consent["statement"]}),
              Spacer(1, 4 * mm), p(_("Report"), "Heading2")]
    if report:
        for key, label in (("indication", _("Indication")), ("technique", _("Technique")),
                           ("findings", _("Findings")), ("conclusion", _("Conclusion"))):
            if report.get(key):
                story.append(p(_("%(label)s: %(text)s") % {"label": label, "text": report[key]}))
        signer = report.get("signed_by") or {}
        story.append(p(_("Signed on %(when)s by %(name)s (RPPS %(rpps)s)") % {
            "when": report["signed_when"] or "-", "name": signer.get("name", "-"), "rpps": signer.get("rpps") or "-"}))
        for a in report["addenda"]:
            story.append(p(_("Addendum of %(when)s by %(name)s: %(text)s") % {
                "when": a["when"], "name": a["by"]["name"], "text": a["text"]}))
    else:
        story.append(p(_("No report yet.")))
    story += [Spacer(1, 4 * mm), p(_("Acts"), "Heading2")]
    rows = [[_("When"), _("Act"), _("Professional"), "RPPS"]]
    for a in shown["acts"]:
        by = a.get("by") or {}
        rows.append([a["when"], a["label"], by.get("name", "-"), by.get("rpps") or "-"])
    table = Table(rows, repeatRows=1, colWidths=[38 * mm, 62 * mm, 50 * mm, 28 * mm])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, "#888888"), ("FONTSIZE", (0, 0), (-1, -1), 8),
                               ("BACKGROUND", (0, 0), (-1, 0), "#dddddd")]))
    story += [table, Spacer(1, 4 * mm), p(_("Prior studies from the site PACS"), "Heading2")]
    for pr in shown.get("priors", []):
        by = _("retrieved automatically") if pr["automatic"] else (pr["requested_by"] or "-")
        story.append(p(" · ".join(x for x in (f"{pr['modalities']} {pr['description'] or pr['study_uid']} "
                                              f"{pr['study_when']}".strip(), f"{pr['state_label']} "
                                              f"{pr['retrieved_when']}".strip(), str(by)) if x)))
    if not shown.get("priors"):
        story.append(p(_("None retrieved.")))
    story += [Spacer(1, 4 * mm), p(_("Professionals"), "Heading2")]
    for person in shown["professionals"]:
        story.append(p(f"{person['role_label']} – {person['name']} (RPPS {person['rpps'] or '-'})"))
    story += [Spacer(1, 4 * mm), p(_("Technical incidents"), "Heading2")]
    if not shown["incidents"]:
        story.append(p(_("None recorded.")))
    for inc in shown["incidents"]:
        story.append(p(f"{inc['when']} · {inc['label']} ({inc['severity']}, {inc['source']}) – {inc['summary']}"))
    pdf.build(story)
    return buf.getvalue()
