"""The signed report as a PDF (reportlab), with its addenda and content hash."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from apps.worklist.models import Report


def _para(text: str) -> str:
    return escape(text).replace("\n", "<br/>")


def report_pdf(report: Report) -> bytes:
    """One document for the web and the API (apps.api.reports uses it). The document may leave the platform,
    so a patient's opposition to data sharing removes the identity lines (the site files it by its IPP)."""
    case = report.case
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=2 * cm,
                            bottomMargin=2 * cm, title=f"{_('Report')} #{case.pk}", author=str(report.signed_by or ""))
    styles = getSampleStyleSheet()
    if case.opposes_data_sharing:
        identity = _("Patient identity withheld (the patient opposes data sharing)")
    else:
        identity = f"{_('Patient')}: {case.patient_display}" + (f" · INS {case.patient_ins}" if case.patient_ins else "")
    identity += f" · IPP {case.local_patient_id}" if case.local_patient_id else ""
    story = [
        Paragraph(_("Teleradiology report"), styles["Title"]),
        Paragraph(_para(f"{case.site.name} · {case.modality_id} {case.exam}"), styles["Heading3"]),
        Paragraph(_para(identity), styles["Normal"]),
        Paragraph(_para(f"{_('Requested by')}: {case.requested_by.display_name if case.requested_by else '-'} · "
                        f"{timezone.localtime(case.requested_at):%d/%m/%Y %H:%M}"), styles["Normal"]),
        Spacer(1, 0.4 * cm),
    ]
    for label, text in ((_("Indication"), report.indication), (_("Technique"), report.technique),
                        (_("Findings"), report.findings), (_("Conclusion"), report.conclusion)):
        story.append(Paragraph(label, styles["Heading4"]))
        story.append(Paragraph(_para(text or "-"), styles["Normal"]))
    if report.critical_finding:
        story.append(Spacer(1, 0.3 * cm))
        story.append(Paragraph(_("Critical finding: the requesting physician was called."), styles["Heading4"]))
    if report.signed_at:
        story.append(Spacer(1, 0.5 * cm))
        signer = report.signed_by.display_name if report.signed_by else ""
        rpps = f" (RPPS {report.signed_by.rpps})" if report.signed_by and report.signed_by.rpps else ""
        story.append(Paragraph(_para(f"{_('Signed by')} {signer}{rpps}, "
                                     f"{timezone.localtime(report.signed_at):%d/%m/%Y %H:%M}"), styles["Normal"]))
        story.append(Paragraph(_para(f"SHA-256: {report.content_sha256}"), styles["Code"]))
    for add in report.addenda.select_related("author"):
        story.append(Paragraph(_para(f"{_('Addendum')} – {add.author.display_name}, "
                                     f"{timezone.localtime(add.signed_at):%d/%m/%Y %H:%M}"), styles["Heading4"]))
        story.append(Paragraph(_para(add.text), styles["Normal"]))
    doc.build(story)
    return buf.getvalue()
