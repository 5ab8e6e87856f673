"""The signed report as a PDF (reportlab): the requesting establishment, the exam (date/time, accession number),
the patient (sex, age), the requesting and reporting physicians with their RPPS, the report, its addenda and its
content hash."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from apps.worklist.models import Case, Report
from apps.worklist.presentation import age_label


def _para(text: str) -> str:
    return escape(text).replace("\n", "<br/>")


def _exam_at(case: Case) -> dt.datetime:
    """When the images were taken: the study's own date/time, else its first image, else the request."""
    study = case.studies.order_by("pk").first()
    return (study and (study.study_datetime or study.first_received_at)) or case.images_complete_at \
        or case.requested_at


def _physician(user: Any) -> str:
    if user is None:
        return "-"
    return f"{user.display_name} (RPPS {user.rpps})" if user.rpps else user.display_name


def report_facts(report: Report) -> dict[str, list[str]]:
    """The lines of the report's header, by block: ``establishment`` (the requesting site, where the report is
    filed), ``exam`` (date/time, accession number), ``patient`` (identity unless withheld, sex, age at the exam),
    ``physicians`` (requesting and reporting, with their RPPS)."""
    case = report.case
    site = case.site
    exam_at = timezone.localtime(_exam_at(case))
    place = ", ".join(x for x in (site.address, site.city) if x)
    # Whole sentences for the translators; gettext calls stay outside f-strings, which xgettext does not read.
    phone = _("Tel. %(phone)s") % {"phone": site.phone_24h} if site.phone_24h else ""
    establishment = [site.name, " · ".join(x for x in (f"FINESS {site.finess}", place, phone) if x)]
    when = _("Exam date: %(at)s") % {"at": f"{exam_at:%d/%m/%Y %H:%M}"}
    if case.accession_number:
        when += " · " + _("Accession number: %(number)s") % {"number": case.accession_number}
    exam = [f"{case.modality_id} {case.exam}", when]
    if case.opposes_data_sharing:
        identity = str(_("Patient identity withheld (the patient opposes data sharing)"))
    else:
        identity = _("Patient: %(name)s") % {"name": case.patient_display}
        identity += f" · INS {case.patient_ins}" if case.patient_ins else ""
    identity += f" · IPP {case.local_patient_id}" if case.local_patient_id else ""
    patient = [identity, _("Sex: %(sex)s · Age: %(age)s") % {
        "sex": case.get_patient_sex_display(), "age": age_label(case.patient_birth_date, exam_at.date())}]
    physicians = [_("Requesting physician: %(name)s · requested on %(at)s") % {
                      "name": _physician(case.requested_by),
                      "at": f"{timezone.localtime(case.requested_at):%d/%m/%Y %H:%M}"},
                  _("Reporting radiologist: %(name)s") % {"name": _physician(report.signed_by or report.author)}]
    return {"establishment": establishment, "exam": exam, "patient": patient, "physicians": physicians}


def report_pdf(report: Report) -> bytes:
    """One document for the web and the API (apps.api.reports uses it). The document may leave the platform,
    so a patient's opposition to data sharing removes the identity lines (the site files it by its IPP)."""
    case = report.case
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=2 * cm,
                            bottomMargin=2 * cm, title=f"{_('Report')} #{case.pk}", author=str(report.signed_by or ""))
    styles = getSampleStyleSheet()
    facts = report_facts(report)
    story: list[Any] = [Paragraph(_para(facts["establishment"][0]), styles["Heading2"])]
    story += [Paragraph(_para(line), styles["Normal"]) for line in facts["establishment"][1:]]
    story += [Spacer(1, 0.3 * cm), Paragraph(_("Teleradiology report"), styles["Title"]),
              Paragraph(_para(facts["exam"][0]), styles["Heading3"])]
    for block in ("exam", "patient", "physicians"):
        lines = facts[block][1:] if block == "exam" else facts[block]
        story += [Paragraph(_para(line), styles["Normal"]) for line in lines]
    story.append(Spacer(1, 0.4 * cm))
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
