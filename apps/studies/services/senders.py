"""Who may send (the sender check), and the gateway's refusals: security events and technical incidents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.audit.services import audit_record
from apps.studies.events import study_incident


@dataclass(frozen=True)
class SenderDecision:
    accepted: bool
    reason: str = ""
    site_id: int | None = None
    node_id: int | None = None
    diagnostic: int = 0  # A-ASSOCIATE-RJ diagnostic when refused: 0x03 calling AE, 0x07 called AE


def sender_decide(*, calling_ae: str, called_ae: str, address: str, tls: bool, gateway_aet: str,
                  node: Any) -> SenderDecision:
    """Pure rule: may this peer open an association? ``node`` is the active DicomNode for the calling AE or None."""
    if called_ae != gateway_aet:
        return SenderDecision(False, f"called AE title {called_ae!r} is not {gateway_aet!r}", diagnostic=0x07)
    if node is None:
        return SenderDecision(False, f"unknown calling AE title {calling_ae!r}", diagnostic=0x03)
    if not node.allows(address):
        return SenderDecision(False, f"{calling_ae} not allowed from {address}", diagnostic=0x03,
                              site_id=node.establishment_id, node_id=node.pk)
    if node.tls_required and not tls:
        return SenderDecision(False, f"{calling_ae} must use TLS", diagnostic=0x03,
                              site_id=node.establishment_id, node_id=node.pk)
    return SenderDecision(True, site_id=node.establishment_id, node_id=node.pk)


def sender_check(*, calling_ae: str, called_ae: str, address: str, tls: bool) -> SenderDecision:
    from apps.regions.selectors import dicom_node_for

    node = dicom_node_for(calling_ae) if calling_ae else None
    return sender_decide(calling_ae=calling_ae, called_ae=called_ae, address=address, tls=tls,
                         gateway_aet=settings.PDS_DICOM_AET, node=node)


@transaction.atomic
def association_refused_record(*, calling_ae: str, called_ae: str, address: str, decision: SenderDecision) -> None:
    """A security event (audit action 'security') and a technical incident."""
    details = {"calling_ae": calling_ae, "called_ae": called_ae, "address": address, "reason": decision.reason}
    audit_record(action="security", object_type="dicom.association", object_repr=f"{calling_ae}@{address}",
                 details=details, establishment_id=decision.site_id)
    study_incident(kind="association_refused", establishment_id=decision.site_id,
                   summary=f"DICOM association refused: {decision.reason}", details=details)


@transaction.atomic
def file_rejected_record(*, site_id: int | None, calling_ae: str, sop_instance_uid: str, status: int,
                         reason: str) -> None:
    study_incident(kind="file_rejected", establishment_id=site_id,
                   summary=f"Image refused from {calling_ae} (0x{status:04X}): {reason}",
                   details={"calling_ae": calling_ae, "sop_instance_uid": sop_instance_uid,
                            "status": f"0x{status:04X}", "reason": reason})


@transaction.atomic
def storage_full_record(*, site_id: int | None, calling_ae: str, free_mb: int) -> None:
    study_incident(kind="storage_full", establishment_id=site_id, severity="critical",
                   summary=f"DICOM storage below threshold ({free_mb} MB free): images refused with 0xA700",
                   details={"calling_ae": calling_ae, "free_mb": free_mb,
                            "min_free_mb": settings.PDS_DICOM_MIN_FREE_MB})
