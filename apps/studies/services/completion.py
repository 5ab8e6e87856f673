"""Leases of open associations, the reconciler's watch, study completion and the hand-off to routing."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.audit.services import audit_record
from apps.studies.events import study_case_attach, study_incident, study_routing_task
from apps.studies.models import ReconcilerWatch, Study, StudyStatus
from apps.studies.services.cleanup import studies_empty_discard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    completed: tuple[int, ...] = ()
    sent: tuple[int, ...] = ()  # routing message handed to the broker (not yet routed: see StudyStatus)
    pending: tuple[int, ...] = ()


def _UNHELD(now: dt.datetime) -> Q:  # noqa: N802  (reads as the condition it is)
    """No open association holds the study (``Study.lease_until``)."""
    return Q(lease_until__isnull=True) | Q(lease_until__lte=now)


def study_complete(*, study_id: int, cutoff: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Mark a quiet study that no open association holds complete and attach it to its case;
    ``studies_reconcile`` sends the routing message right after this commits. The case is the worklist's
    business (``apps.studies.events.study_case_attach``)."""
    now = now or timezone.now()  # the moment of this study's completion (a reconciler pass completes several)
    with transaction.atomic():
        # skip_locked: a row another reconciler is completing (the gateway's and beat's both run), or that an image
        # is updating, is left to the next pass instead of holding up this one (every study after it waited).
        won = (Study.objects.select_for_update(skip_locked=True)
               .filter(_UNHELD(now), pk=study_id, status=StudyStatus.RECEIVING, last_received_at__lt=cutoff,
                       num_instances__gt=0)  # a study row whose first image failed is never completed
               .values_list("pk", flat=True).first())
        if won is None:
            return False
        Study.objects.filter(pk=study_id).update(status=StudyStatus.COMPLETE, completed_at=now)
        study = Study.objects.get(pk=study_id)
        # An ultrasound study is attached too (the worklist stores it as a redirected case, never routed): the
        # site must hear that the patient goes to an ultrasound centre instead.
        case_id = study_case_attach(study_id=study_id)
        prior = case_id is None and Study.objects.filter(pk=study_id, status=StudyStatus.PRIOR).exists()
        if case_id is None and not prior:
            Study.objects.filter(pk=study_id).update(status=StudyStatus.NOT_ROUTED)
            if study.ultrasound:
                study_incident(kind="ultrasound_received", establishment_id=study.site_id, study_id=study_id,
                               case_id=Study.objects.filter(pk=study_id).values_list("case_id", flat=True).first(),
                               summary="Ultrasound study received by DICOM: not read remotely, the patient is to "
                                       "be redirected to an ultrasound referral centre")
            else:
                study_incident(kind="other", establishment_id=study.site_id, study_id=study_id,
                               summary=f"Study with modality {study.modality!r} stored but not routed")
        audit_record(action="update", obj=study, patient_data=True, establishment_id=study.site_id,
                     details={"event": "complete", "series": study.num_series, "instances": study.num_instances,
                              "case_id": case_id, "ultrasound": study.ultrasound, "prior": prior})
    return True


ROUTING_SEND_TIMEOUT = 2.0  # seconds: connecting, then writing the message (a Redis that hangs)
ROUTING_SEND_FAIL_FAST = {"max_retries": 0, "socket_connect_timeout": ROUTING_SEND_TIMEOUT,
                          "socket_timeout": ROUTING_SEND_TIMEOUT, "retry_on_timeout": False}


SENT, NOTHING_TO_SEND, SEND_FAILED = "sent", "nothing to send", "send failed"


class _BrokerLink:
    """A fail-fast broker connection for one reconciler pass, opened at its first send and reused by the next ones
    (a connection per message cost a TCP and Redis handshake each, under load the longest step of the hand-off).
    Dropped after a failure, closed at the end of the pass."""

    def __init__(self) -> None:
        self._conn: Any = None

    def send(self, task: str, case_id: int) -> None:
        from pds_platform.celery import app

        try:
            if self._conn is None:
                self._conn = app.connection_for_write(transport_options=ROUTING_SEND_FAIL_FAST,
                                                      connect_timeout=ROUTING_SEND_TIMEOUT)
            app.send_task(task, args=[case_id], retry=False, connection=self._conn)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # a connection that failed may fail to close too: nothing is left to do with it
                log.debug("broker connection not closed cleanly", exc_info=True)


def study_routing_send(*, study_id: int) -> bool:
    """Whether the routing message of this study was sent now (see ``_routing_send``)."""
    link = _BrokerLink()
    try:
        return _routing_send(study_id=study_id, link=link) == SENT
    finally:
        link.close()


def _routing_send(*, study_id: int, link: _BrokerLink) -> str:
    """Send the routing message for a complete study once; on a broker failure leave it pending.

    The row is locked (skip_locked: a concurrent reconciler moves on) while the message is sent, and
    marked only once the broker took it: ``routing_enqueued_at`` never claims a message that was not sent.
    A commit failing after the send means a second message later (at least once; routing is idempotent).
    The study stays ``complete``: it is ``routed`` once routing has assigned its case (``studies_routed_mark``).
    """
    task = study_routing_task()  # outside the try below: a missing registration is a bug, not a broker outage
    with transaction.atomic():
        study = (Study.objects.select_for_update(skip_locked=True)
                 .filter(pk=study_id, status=StudyStatus.COMPLETE, routing_enqueued_at__isnull=True,
                         case__isnull=False).only("pk", "case_id").first())
        if study is None or study.case_id is None:  # case__isnull=False: never None here
            return NOTHING_TO_SEND
        try:
            # A connection of the pass's own that gives up at once: the message is a hint (the row is the truth
            # and the reconciler sends it again), and the shared producer pool's connection retries for seconds
            # before failing (kombu's ensure_connection: ~6 s per send with Redis down, during which the
            # gateway's reconciler completed nothing).
            link.send(task, study.case_id)
        except Exception:  # broker down: stays pending, the reconciler sends it when the broker is back
            log.warning("routing message for study %s not sent; will retry", study_id, exc_info=True)
            return SEND_FAILED
        Study.objects.filter(pk=study_id).update(routing_enqueued_at=timezone.now())
    return SENT


def studies_routed_mark(*, case_ids: Iterable[int] | QuerySet[Any, Any]) -> int:
    """Mark ``routed`` the complete studies of these cases, which routing has taken in hand. Called by routing
    (``apps.routing.services.case_studies_routed_mark``, which decides what "in hand" means) once its decision
    has committed, with ``case_ids`` a subquery: one statement. Not audited: the assignment it follows is."""
    return Study.objects.filter(status=StudyStatus.COMPLETE, case_id__in=case_ids).update(status=StudyStatus.ROUTED)


# The reconcilers pass every 1 s (gateway) or 2 s (beat): this long without a pass is an interruption
# (the database unreachable, or no reconciler running). A shorter outage goes unnoticed here, but an
# association still sending holds its studies longer than that (ASSOCIATION_LEASE_SECONDS).
RECONCILER_GAP_SECONDS = 10.0
# How long an image or a renewal from the gateway holds its study (see Study.lease_until); the gateway renews
# more often than this, and clears it at the association's end.
ASSOCIATION_LEASE_SECONDS = 30.0


def reconciler_watch(*, now: dt.datetime) -> dt.datetime:
    """Record a reconciler pass; return since when the reconciler has been watching without interruption."""
    with transaction.atomic():
        watch = ReconcilerWatch.objects.select_for_update().filter(pk=1).first()
        if watch is None:
            try:
                with transaction.atomic():
                    ReconcilerWatch.objects.create(pk=1, observed_at=now, since=now)
                return now
            except IntegrityError:  # another reconciler created it first
                watch = ReconcilerWatch.objects.select_for_update().get(pk=1)
        if (now - watch.observed_at).total_seconds() > RECONCILER_GAP_SECONDS:
            watch.since = now
        watch.observed_at = max(watch.observed_at, now)
        watch.save(update_fields=["observed_at", "since"])
        return watch.since


def studies_lease_renew(*, study_ids: list[int], until: dt.datetime) -> int:
    """An open association is still delivering to these studies (the gateway, for its open associations)."""
    return Study.objects.filter(pk__in=study_ids, status=StudyStatus.RECEIVING).update(lease_until=until)


def studies_lease_release(*, study_ids: list[int]) -> int:
    """The association delivering to these studies ended (released or aborted)."""
    return Study.objects.filter(pk__in=study_ids, lease_until__isnull=False).update(lease_until=None)


EMPTY_STUDY_GRACE_SECONDS = 60.0


def studies_reconcile(*, now: dt.datetime | None = None, quiet_seconds: float | None = None) -> ReconcileResult:
    """Complete the quiet studies, then send every routing message still pending. Safe to run anywhere, often.

    Nothing completes until the reconciler has been watching for the quiet period (``reconciler_watch``)."""
    fixed_clock = now is not None
    now = now or timezone.now()
    quiet = settings.PDS_DICOM_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    cutoff = now - dt.timedelta(seconds=quiet)
    watching_since = reconciler_watch(now=now)
    quiet_ids = [] if watching_since >= cutoff else list(
        Study.objects.filter(_UNHELD(now), status=StudyStatus.RECEIVING, last_received_at__lt=cutoff,
                             num_instances__gt=0)
        .order_by("last_received_at").values_list("pk", flat=True)[:200])
    if watching_since < cutoff:
        # An empty study is garbage only once nothing happened to it for a while, whatever the quiet period: a
        # first image may be between its study row and its own row right now.
        studies_empty_discard(cutoff=min(cutoff, now - dt.timedelta(seconds=EMPTY_STUDY_GRACE_SECONDS)), now=now)
    # Each study is handed to routing as soon as its own completion commits, not after the whole pass: on a busy
    # night a pass completes tens of studies and the first would otherwise wait for the last. Each is stamped
    # with the moment of its own completion (``now`` only when the caller fixes the clock).
    completed: list[int] = []
    sent: list[int] = []
    broker_up = True
    link = _BrokerLink()
    try:
        for i in quiet_ids:
            if not study_complete(study_id=i, cutoff=cutoff, now=now if fixed_clock else None):
                continue
            completed.append(i)
            if broker_up:
                outcome = _routing_send(study_id=i, link=link)
                broker_up = outcome != SEND_FAILED
                if outcome == SENT:
                    sent.append(i)
        # Then the routing message of every complete study not yet handed over (a broker that was down, a process
        # that died between the commit and the send).
        pending_ids = list(Study.objects.filter(status=StudyStatus.COMPLETE, routing_enqueued_at__isnull=True,
                                                case__isnull=False).values_list("pk", flat=True)[:200])
        for i in pending_ids if broker_up else ():
            outcome = _routing_send(study_id=i, link=link)
            if outcome == SEND_FAILED:
                break  # the broker is down (a failed send can take seconds): try again next pass
            if outcome == SENT:
                sent.append(i)
    finally:
        link.close()
    pending = [i for i in pending_ids if i not in sent]
    return ReconcileResult(completed=tuple(completed), sent=tuple(sent), pending=tuple(pending))
