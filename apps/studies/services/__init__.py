"""Writes on received studies. Called by the DICOM gateway (association threads) and by the reconciler.

Invariants:
- an image is acknowledged only once its file and its Instance row are both durable (the gateway commits the row
  while the file flushes; if the disk fails the row is removed again, and a row left without its file by a
  killed process is removed by the gateway's sweep, ``instances_unstored_remove``);
- a SOP Instance UID has one row; a conflicting copy is recorded in QuarantinedInstance;
- a study is complete after PDS_DICOM_QUIET_SECONDS without a new image, once no open association
  holds it (``lease_until``: written with each image, renewed while the association stays open and
  sending, cleared at its release or abort, running out by itself if the gateway process dies), and
  once the reconciler has been watching for the quiet period (``ReconcilerWatch``: after a database
  outage the quiet period restarts from the recovery); completion is a compare-and-set on
  (status=receiving, last_received_at < cutoff, no lease), the gateway's per-image update is a
  compare-and-set on status=receiving, so an image either extends the quiet period or is seen as
  late, never both;
- the routing message is sent after commit; PostgreSQL is the truth (``routing_enqueued_at``
  stays empty while the broker is down and the reconciler sends it again);
- a study is ``routed`` only once routing took its case in hand (``studies_routed_mark``, called by
  routing once its decision has committed); a sent message alone leaves it ``complete``.

Audit: receiving a study (its first image), completing it and refusing a sender are audited;
individual images are not (one chained audit append per image would serialise every
association on the audit lock; the Instance rows are themselves the per-image record).

Studies import nothing above them: incidents, a complete study's case, late images and the routing task's
name go through the study hooks (``apps.studies.events``), filled by the apps above.

One module per seam: senders (the sender check, refusals), intake (study, series and instance rows, late
series, quarantine), cleanup (study and series rows a refused first image left empty), completion (leases, the reconciler's watch, completion, the hand-off to routing). Every
public name is importable from here.
"""

from apps.studies.services.cleanup import (
    instance_unrecord,
    instances_sweep_start,
    instances_unstored_remove,
    studies_empty_discard,
    study_series_discard_empty,
)
from apps.studies.services.completion import (
    ASSOCIATION_LEASE_SECONDS,
    NOTHING_TO_SEND,
    RECONCILER_GAP_SECONDS,
    ROUTING_SEND_FAIL_FAST,
    ROUTING_SEND_TIMEOUT,
    SEND_FAILED,
    SENT,
    ReconcileResult,
    reconciler_watch,
    studies_lease_release,
    studies_lease_renew,
    studies_reconcile,
    studies_routed_mark,
    study_complete,
    study_routing_send,
)
from apps.studies.services.intake import (
    STUDY_DATE_AHEAD,
    STUDY_DATE_MIN,
    SeriesRef,
    StoredInstance,
    StudyOfAnotherSite,
    instance_quarantine,
    instance_record,
    study_datetime_plausible,
    study_series_ensure,
)
from apps.studies.services.senders import (
    SenderDecision,
    association_refused_record,
    file_rejected_record,
    sender_check,
    sender_decide,
    storage_full_record,
)

__all__ = [
    "ASSOCIATION_LEASE_SECONDS", "NOTHING_TO_SEND", "RECONCILER_GAP_SECONDS", "ROUTING_SEND_FAIL_FAST",
    "ROUTING_SEND_TIMEOUT", "SEND_FAILED", "SENT", "STUDY_DATE_AHEAD", "STUDY_DATE_MIN", "ReconcileResult",
    "SenderDecision", "SeriesRef", "StoredInstance", "StudyOfAnotherSite", "association_refused_record", "file_rejected_record",
    "instance_quarantine", "instance_record", "reconciler_watch", "sender_check", "sender_decide",
    "storage_full_record", "studies_lease_release", "studies_lease_renew", "studies_reconcile",
    "studies_routed_mark", "study_complete", "study_datetime_plausible", "study_routing_send",
    "study_series_ensure", "studies_empty_discard", "study_series_discard_empty", "instance_unrecord",
    "instances_sweep_start", "instances_unstored_remove",
]
