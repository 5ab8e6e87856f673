"""What the dashboard's tables say to a reader, in the reader's language.

The selectors build ``Table`` objects with stable English keys (table titles, column keys such as
``median_min``, a few enumerated cell values such as weekdays or "tonight"): the CSV exports keep those keys,
which scripts read; the HTML page shows them through this module. A key that has no label here is shown as it
is, so a new column never breaks the page (the French catalogue test then lists its label as missing only once
it is added here)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.regions.period_labels import period_label_text

TITLES: dict[str, Any] = {
    "Interpretations per site": _("Interpretations per site"),
    "Requests and interpretations per modality": _("Requests and interpretations per modality"),
    "Requests by weekday and hour (Europe/Paris)": _("Requests by weekday and hour (Europe/Paris)"),
    "Interpretations by weekday and hour of signature (Europe/Paris)":
        _("Interpretations by weekday and hour of signature (Europe/Paris)"),
    "CT vs ultrasound requests per site and month (substitution watch)":
        _("CT vs ultrasound requests per site and month (substitution watch)"),
    "Turnaround per site": _("Turnaround per site"),
    "Turnaround per modality": _("Turnaround per modality"),
    "Turnaround per on-call line and provider": _("Turnaround per on-call line and provider"),
    "Turnaround per urgency vs target": _("Turnaround per urgency vs target"),
    "Turnaround, all cases": _("Turnaround, all cases"),
    "Load, overflow and escalations": _("Load, overflow and escalations"),
    "Cases per radiologist per shift": _("Cases per radiologist per shift"),
    "Declines per radiologist": _("Declines per radiologist"),
    "Establishments in the mesh": _("Establishments in the mesh"),
    "Users per profile": _("Users per profile"),
    "Modalities in use": _("Modalities in use"),
    "People trained per profile": _("People trained per profile"),
    "Coverage gaps": _("Coverage gaps"),
    "Coverage gaps (uncovered PDS stretches)": _("Coverage gaps (uncovered PDS stretches)"),
    "Criticality matrix (open risks)": _("Criticality matrix (open risks)"),
    "Risk register": _("Risk register"),
    "Justification after acquisition per site": _("Justification after acquisition per site"),
    "Preventive actions": _("Preventive actions"),
}

COLUMNS: dict[str, Any] = {
    "site": _("Site"), "requests": _("Requests"), "interpretations": _("Interpretations"),
    "emergency": _("Emergency"), "non_emergency": _("Non-emergency"), "modality": _("Modality"),
    "weekday": _("Day"), "month": _("Month"), "ct_requests": _("CT requests"),
    "us_requests": _("Ultrasound requests"), "ct_per_us": _("CT per ultrasound"),
    "group": _("Group"), "stage": _("Stage"), "cases": _("Cases"), "median_min": _("Median (min)"),
    "p90_min": _("90th percentile (min)"), "target_min": _("Target (min)"),
    "p90_within_target": _("90th percentile within target"),
    "assigned_cases": _("Cases assigned"), "overflowed_to_provider": _("Overflowed to a provider"),
    "overflow_share_pct": _("Overflow share (%)"), "cases_escalated": _("Cases escalated"),
    "escalation_events": _("Escalations"), "escalated_to_coordinator": _("Escalated to the coordinator"),
    "declines": _("Declines"), "radiologist": _("Radiologist"), "shifts": _("Shifts"),
    "cases_per_shift": _("Cases per shift"), "max_cases_in_a_shift": _("Most cases in one shift"),
    "kind": _("Kind"), "total": _("Total"), "operational": _("Operational"), "role": _("Profile"),
    "accounts": _("Accounts"), "logged_in_during_period": _("Logged in during the period"),
    "requests_in_period": _("Requests in the period"), "devices": _("Devices"), "profile": _("Profile"),
    "sessions": _("Sessions"), "people_trained": _("People trained"), "status": _("Status"),
    "when": _("When"), "period": _("Period"), "gap_start": _("Gap from"), "gap_end": _("Gap until"),
    "impact": _("Impact"), "probability 1": _("Probability 1"), "probability 2": _("Probability 2"),
    "probability 3": _("Probability 3"), "probability 4": _("Probability 4"), "risk": _("Risk"),
    "nature": _("Nature"), "probability": _("Probability"), "criticality": _("Criticality"),
    "level": _("Level"), "preventive_action": _("Preventive action"), "owner": _("Owner"),
    "due_date": _("Due date"), "last_review": _("Last review"), "next_review": _("Next review"),
    "review_overdue": _("Review overdue"),
    "acquired_before_validation": _("Images before validation"), "share_pct": _("Share (%)"),
    "us_received_by_dicom": _("of which ultrasound received by DICOM"), "us_redirected": _("of which redirected"),
    "action": _("Preventive action"), "actions": _("Preventive actions"), "open_actions": _("Open actions"),
    "overdue_actions": _("Actions overdue"), "next_due_date": _("Next due date"), "overdue": _("Overdue"),
}

# Enumerated cell values the selectors write in English.
VALUES: dict[str, Any] = {
    "Mon": _("Mon"), "Tue": _("Tue"), "Wed": _("Wed"), "Thu": _("Thu"), "Fri": _("Fri"), "Sat": _("Sat"),
    "Sun": _("Sun"), "tonight": _("tonight"), "this week": _("this week"), "next week": _("next week"),
    "all": _("all"), "(no line)": _("(no line)"), "unavailable": _("unavailable"),
    "request → validation": _("request → validation"),
    "images complete → assigned": _("images complete → assigned"),
    "assigned → acknowledged": _("assigned → acknowledged"),
    "acknowledged → signed": _("acknowledged → signed"),
    "request → signed report": _("request → signed report"),
    "planned": _("Planned"), "in_progress": _("In progress"), "done": _("Done"), "cancelled": _("Cancelled"),
}

NOTES: dict[str, Any] = {
    "Interpretations are signed reports; emergency = vital or urgent requests.":
        _("Interpretations are signed reports; emergency = vital or urgent requests."),
    "The roster coverage report is not available.": _("The roster coverage report is not available."),
    "Images that arrived before the remote radiologist validated the indication (or with no request). Reading "
    "is never held for an emergency; the deviation is recorded on the case.":
        _("Images that arrived before the remote radiologist validated the indication (or with no request). "
          "Reading is never held for an emergency; the deviation is recorded on the case."),
    "Ultrasound requests: typed into the platform (redirected ones included) and ultrasound studies received by "
    "DICOM without a request.":
        _("Ultrasound requests: typed into the platform (redirected ones included) and ultrasound studies "
          "received by DICOM without a request."),
}


def title_label(title: str) -> str:
    return str(TITLES.get(title, title))


def column_label(key: str) -> str:
    return str(COLUMNS.get(key, key))


def value_label(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return str(VALUES[value]) if value in VALUES else period_label_text(value)


def note_label(note: str) -> str:
    return str(NOTES[note]) if note in NOTES else gettext(note)
