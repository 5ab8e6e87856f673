"""Report templates per exam: the skeletons the coordinator edits in the admin (ReportTemplate rows, seeded
in French by migration 0002), chosen for a case by modality and the exam's wording."""

from __future__ import annotations

from django.utils.translation import gettext

from apps.worklist.models import ReportTemplate


def free_text() -> ReportTemplate:
    """Offered when no template fits (or none is active): the sections left empty. Not saved."""
    return ReportTemplate(key="", label=gettext("Free text"))


def report_templates_active() -> list[ReportTemplate]:
    return list(ReportTemplate.objects.filter(active=True))


def template_for(modality_code: str, exam: str, templates: list[ReportTemplate] | None = None) -> ReportTemplate:
    """The first template (by order) of the case's modality with a keyword in the exam's wording, else the
    modality's template without keywords, else free text."""
    candidates = report_templates_active() if templates is None else templates
    text = exam.lower()
    for t in candidates:
        if t.modality == modality_code and any(k in text for k in t.keyword_list):
            return t
    for t in candidates:
        if t.modality in (modality_code, "") and not t.keyword_list:
            return t
    return free_text()


def template_get(key: str, templates: list[ReportTemplate] | None = None) -> ReportTemplate | None:
    candidates = report_templates_active() if templates is None else templates
    return next((t for t in candidates if t.key == key), None)


def report_templates_for_editor(modality_code: str, exam: str,
                                draft_key: str = "") -> tuple[ReportTemplate, list[ReportTemplate]]:
    """The template to pre-select (the draft's own, else the exam's) and the choices offered, free text last."""
    templates = report_templates_active()
    chosen = (template_get(draft_key, templates) if draft_key else None) or template_for(modality_code, exam,
                                                                                          templates)
    return chosen, [*templates, free_text()]
