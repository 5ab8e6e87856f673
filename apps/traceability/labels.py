"""The tele-act record as people read it (the HTML page and the PDF), in the reader's language.

The record itself (``teleact_record_build``) is data for machines and for the frozen snapshot: English keys,
ISO-8601 UTC times, and the same in the JSON and FHIR exports. ``record_display`` adds, next to each machine
value, what a person reads: act and role labels, times in Europe/Paris as dd/mm/yyyy hh:mm, the consent
statement in the reader's language."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.timezones import PARIS
from apps.worklist.models import Urgency

ACTS: dict[str, Any] = {
    "request": _("Interpretation requested"),
    "validation": _("Indication validated, protocol set"),
    "acquisition": _("Acquisition performed by the radiographer"),
    "images_complete": _("Images acquired and complete"),
    "assignment": _("Assigned to the on-call radiologist"),
    "acknowledgement": _("Acknowledged by the radiologist"),
    "reading": _("Reading started"),
    "expert_request": _("Expert opinion requested"),
    "expert_opinion": _("Expert opinion given"),
    "report_signed": _("Report signed"),
    "critical_finding_call": _("Critical finding called to the physician"),
    "addendum": _("Addendum signed"),
    "critical_finding_confirmed": _("Critical finding call confirmed by the physician"),
    "delivery": _("Report delivered to the requesting site"),
    "report_read": _("Report read at the requesting site"),
    "prior_retrieved": _("Prior study retrieved from the site PACS"),
}

PRIOR_STATES: dict[str, Any] = {
    "requested": _("retrieval requested"),
    "retrieving": _("retrieving"),
    "retrieved": _("retrieved"),
    "failed": _("retrieval failed"),
    "available": _("not retrieved"),
}

ROLES: dict[str, Any] = {
    "requesting_physician": _("Requesting physician"),
    "radiographer": _("Radiographer"),
    "validating_radiologist": _("Radiologist who validated the indication"),
    "assigned_radiologist": _("On-call radiologist assigned"),
    "reading_radiologist": _("Reading radiologist"),
    "report_author": _("Report author"),
    "report_signatory": _("Report signatory"),
    "expert": _("Sub-specialty expert"),
    "addendum_author": _("Addendum author"),
    "critical_call": _("Radiologist who called the critical finding"),
    "critical_finding_call": _("Radiologist who called the critical finding"),
    "critical_confirmation": _("Physician who confirmed the critical finding"),
    "critical_finding_confirmed": _("Physician who confirmed the critical finding"),
    "report_reader": _("Reader of the report at the requesting site"),
    "report_read": _("Reader of the report at the requesting site"),
    "acquisition": _("Radiographer"),
    "delivery": _("Recipient of the report"),
    "prior_retrieved": _("Professional who asked for the prior study"),
}


def paris_time(iso: str | None) -> str:
    """An ISO-8601 time of the record as a person reads it: Europe/Paris, dd/mm/yyyy hh:mm ("" if none)."""
    if not iso:
        return ""
    value = dt.datetime.fromisoformat(iso)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    return value.strftime("%d/%m/%Y") if len(iso) <= 10 else value.strftime("%d/%m/%Y %H:%M")


def act_label(act: dict[str, Any]) -> str:
    return str(ACTS[act["act"]]) if act.get("act") in ACTS else gettext(act.get("label") or "")


def role_label(role: str) -> str:
    return str(ROLES.get(role, role))


def record_display(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the record with ``when``/``label``/``role_label`` fields for people (the machine ones kept)."""
    out = copy.deepcopy(doc)
    for act in out["acts"]:
        act["label"], act["when"] = act_label(act), paris_time(act["at"])
    for person in out["professionals"]:
        person["role_label"] = role_label(person["role"])
    for incident in out["incidents"]:
        incident["when"] = paris_time(incident["at"])
    for prior in out.get("priors", []):  # records frozen before priors existed have none
        prior["study_when"] = paris_time(prior["study_at"])[:10]
        prior["retrieved_when"] = paris_time(prior["retrieved_at"])
        prior["state_label"] = str(PRIOR_STATES.get(prior["state"], prior["state"]))
        prior["modalities"] = prior["modalities"].replace("\\", "/")
    out["consent"]["statement"] = gettext(out["consent"]["statement"])
    if out["patient"].get("withheld"):
        out["patient"]["statement"] = gettext(out["patient"]["statement"])
    else:
        out["patient"]["birth_date_display"] = paris_time(out["patient"].get("birth_date"))
    report = out["report"]
    if report:
        report["signed_when"] = paris_time(report.get("signed_at"))
        for addendum in report["addenda"]:
            addendum["when"] = paris_time(addendum["at"])
    return out


def urgency_label(urgency: str) -> str:
    return str(dict(Urgency.choices).get(urgency, urgency))
