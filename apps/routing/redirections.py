"""Telling people about an ultrasound study that came by DICOM: it is never read remotely, the patient must go to
an ultrasound centre. Routing subscribes to the case timeline (``apps.worklist.events``): when the worklist
writes the redirection of a case received by DICOM, the requesting site's emergency physicians and radiographers
and the region's coordinators are alerted, in the transaction that writes the event (announced iff committed).

A request typed in the platform is redirected on the physician's own screen: nobody else is alerted for it.
"""

from __future__ import annotations

from apps.accounts.models import Role, User
from apps.routing.notifiers import notification_create
from apps.worklist.models import CaseEvent, CaseEventKind, Origin

SITE_ALERTED = (Role.EMERGENCY_PHYSICIAN, Role.RADIOGRAPHER)


def _body(event: CaseEvent) -> str:
    """The alert's lines, each a sentence of apps.routing.notification_texts."""
    case, d = event.case, event.data
    if not d.get("referral"):
        return (f"Case #{case.pk} ({case.exam}): no ultrasound referral centre can take this patient; organise "
                f"the ultrasound with the coordinator.")
    lines = [f"Case #{case.pk} ({case.exam}): send the patient to {d['referral']}, about {d['travel_minutes']} min "
             f"away, tel. {d.get('phone', '')}."]
    if not d.get("within_bound"):
        lines.append(f"Warning: no suitable ultrasound centre within {d.get('bound')} min.")
    if d.get("paediatric_pole"):
        lines.append(f"Paediatric ultrasound pole: {d['paediatric_pole']}, about {d.get('paediatric_pole_minutes')} "
                     f"min away.")
    return "\n".join(lines)


def ultrasound_redirect_notify(*, event: CaseEvent) -> None:
    """Subscriber of the case timeline: alert the site and the coordinator of a DICOM ultrasound redirection."""
    if event.kind != CaseEventKind.REDIRECTED or event.data.get("origin") != Origin.DICOM:
        return
    case = event.case
    site = case.site
    title = f"PDS: ultrasound received from {site.name}: not read remotely, redirect the patient"
    body = _body(event)
    recipients = list(User.objects.filter(is_active=True, role__in=SITE_ALERTED, memberships__establishment=site)
                      .distinct())
    recipients += list(User.objects.filter(is_active=True, role=Role.ARS_COORDINATOR,
                                           region_id=site.territory.region_id))
    for user in recipients:
        notification_create(user=user, case=case, kind="redirected", title=title, body=body)
