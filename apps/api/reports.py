"""PDF rendering of a signed report for the API.

The worklist app's ``apps.worklist.pdf.report_pdf(report) -> bytes`` is used when present, so that
the web and the API give the same document; this minimal reportlab rendering is only the stand-in.
"""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def report_pdf(report: Any) -> bytes:
    try:
        from apps.worklist.pdf import report_pdf as worklist_report_pdf
    except ImportError:
        return _fallback_pdf(report)
    import inspect

    # The worklist's signature moved from (case, report) to (report); accept both during the transition.
    if len(inspect.signature(worklist_report_pdf).parameters) >= 2:
        return bytes(worklist_report_pdf(report.case, report))
    return bytes(worklist_report_pdf(report))


def _fallback_pdf(report: Any) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    case = report.case
    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, title=f"Compte rendu {case.public_id}")
    flow: list[Any] = [Paragraph(escape(f"Compte rendu – {case.modality_id} {case.exam}"), styles["Title"]),
                       Paragraph(escape(str(case.site)), styles["Normal"])]
    if not case.opposes_data_sharing:
        flow.append(Paragraph(escape(f"Patient : {case.patient_display}"), styles["Normal"]))
    if report.signed_at:
        flow.append(Paragraph(escape(
            f"Signé le {report.signed_at.astimezone(PARIS):%d/%m/%Y %H:%M} par "
            f"{(report.signed_by or report.author).display_name}"), styles["Normal"]))
    for title, text in (("Indication", report.indication), ("Technique", report.technique),
                        ("Résultats", report.findings), ("Conclusion", report.conclusion)):
        if text:
            flow += [Spacer(1, 8), Paragraph(title, styles["Heading3"]),
                     Paragraph(escape(text).replace("\n", "<br/>"), styles["Normal"])]
    for add in report.addenda.all():
        flow += [Spacer(1, 8), Paragraph(escape(f"Addendum du {add.signed_at.astimezone(PARIS):%d/%m/%Y %H:%M}"),
                                         styles["Heading3"]),
                 Paragraph(escape(add.text).replace("\n", "<br/>"), styles["Normal"])]
    doc.build(flow)
    return buf.getvalue()
