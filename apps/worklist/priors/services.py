"""The state machine of the priors, audited. Only these functions write the priors' rows.

Query (one per case): ``pending`` (``priors_query_request``: a case got its study, or its page was opened before
any query) -> ``running`` (compare-and-set by the worker, ``priors_query_run``) -> ``done`` (the answers listed,
the relevant ones requested) or ``failed`` (the reason kept and shown); no Q/R node -> nothing is recorded.
Prior: ``available`` -> ``requested`` (``prior_retrieve_request``: automatically for a relevant one, or a user's
click) -> ``retrieving`` (the worker sends the C-MOVE or the C-GET, ``prior_retrieve_run``) -> ``retrieved`` (the
study completed and was recognised, ``prior_arrived``) or ``failed`` (the retrieval failed, or nothing arrived
within ``PDS_PRIORS_ARRIVAL_MINUTES``); a failed one may be requested again.

Every C-FIND and C-MOVE of patient data writes an audit entry (action ``query`` / ``retrieve``, object the case),
success or failure; so does the storing of a retrieved prior (``receive``). A prior that becomes ``retrieved`` or
``failed`` also writes a case event (``prior_retrieved`` / ``prior_retrieval_failed``) in the same transaction: the
case's timeline shows what the reader had at hand.

Network calls are made outside any transaction; each step is a compare-and-set on the state, so a duplicate
message does nothing and a worker that died mid-step is re-driven by ``priors_redrive`` (beat).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.context import ActorContext, acting_as
from apps.core.errors import ConflictError, NotFoundError
from apps.regions.models import DicomNode, QrRetrieve
from apps.studies.models import Study, StudyStatus
from apps.worklist.models import Case, CaseEventKind
from apps.worklist.priors import QUERY_TASK, RETRIEVE_TASK, rules, scu
from apps.worklist.priors.models import PriorQuery, PriorQueryState, PriorState, PriorStudy
from apps.worklist.services.common import case_event_add, task_send_on_commit

log = logging.getLogger(__name__)

STALE = dt.timedelta(seconds=60)  # a pending step whose message seems lost is sent again after this
RUNNING_STALE = dt.timedelta(minutes=15)  # a running query whose worker died is run again after this


def qr_node_for(site_id: int) -> DicomNode | None:
    return (DicomNode.objects.filter(establishment_id=site_id, active=True, qr_enabled=True)
            .exclude(qr_host="").exclude(qr_port__isnull=True).order_by("pk").first())


def _pacs(node: DicomNode) -> scu.Pacs:
    return scu.Pacs(host=node.qr_host, port=int(node.qr_port or 0), ae_title=node.qr_ae_title,
                    calling_ae=settings.PDS_DICOM_AET, timeout=settings.PDS_PRIORS_TIMEOUT,
                    move_timeout=settings.PDS_PRIORS_MOVE_TIMEOUT)


def _audit(action: str, case: Case, **details: Any) -> None:
    audit_record(action=action, object_type="worklist.case", object_id=case.pk, object_repr=str(case)[:200],
                 patient_data=True, establishment_id=case.site_id, details=details)


# --- the query ---------------------------------------------------------------------------------------------


def priors_query_request(*, case_id: int, site_id: int | None = None) -> bool:
    """Ask for the case's priors to be queried, once per case, if its site has a PACS to query. True if asked now.

    Only once the case has its own study: before, tonight's study may already be on the site PACS and would be
    taken for a prior (listed, retrieved, and then kept from its case)."""
    if site_id is None:
        site_id = Case.objects.filter(pk=case_id).values_list("site_id", flat=True).first()
    # The node first: most sites have none, and this runs at every study's completion (one query then).
    node = qr_node_for(site_id) if site_id is not None else None
    if node is None or PriorQuery.objects.filter(case_id=case_id).exists():
        return False
    if not Study.objects.filter(case_id=case_id).exists():
        return False
    try:
        with transaction.atomic():
            PriorQuery.objects.create(case_id=case_id, node=node, requested_at=timezone.now())
    except IntegrityError:  # asked concurrently (the study's arrival and the page): one row
        return False
    task_send_on_commit(QUERY_TASK, case_id)
    return True


def priors_query_retry(*, case_id: int, user: Any = None) -> PriorQuery:
    """Ask again after a failed query (the PACS was down, its address was wrong): back to pending, audited."""
    with transaction.atomic():
        query = PriorQuery.objects.select_related("case").filter(case_id=case_id).first()
        if query is None:
            raise NotFoundError(_("The site PACS has not been queried for this case."))
        if not PriorQuery.objects.filter(case_id=case_id, state=PriorQueryState.FAILED).update(
                state=PriorQueryState.PENDING, requested_at=timezone.now()):
            raise ConflictError(_("The site PACS is being queried or has answered."), code="prior_query_not_failed")
        by = getattr(user, "username", "") if getattr(user, "is_authenticated", False) else ""
        _audit("query", query.case, event="priors_query_retry", requested_by=by)
        task_send_on_commit(QUERY_TASK, case_id)
    query.refresh_from_db()
    return query


def _fail_query(case: Case, node: DicomNode | None, code: str, detail: str = "") -> None:
    with transaction.atomic():
        PriorQuery.objects.filter(case_id=case.pk, state=PriorQueryState.RUNNING).update(
            state=PriorQueryState.FAILED, error=f"{code}: {detail}"[:300], finished_at=timezone.now())
        _audit("query", case, event="priors_query", outcome="failed", error=code, detail=detail[:200],
               node=node.ae_title if node else "")


def priors_query_run(*, case_id: int) -> str:
    """The worker's step: C-FIND the patient's studies on the site PACS, list them, request the relevant ones."""
    now = timezone.now()
    if not PriorQuery.objects.filter(case_id=case_id, state=PriorQueryState.PENDING).update(
            state=PriorQueryState.RUNNING, started_at=now, attempts=F("attempts") + 1, error=""):
        return "not pending"
    case = Case.objects.select_related("site").get(pk=case_id)
    node = qr_node_for(case.site_id)
    if node is None:
        PriorQuery.objects.filter(case_id=case_id).update(state=PriorQueryState.NOT_CONFIGURED, finished_at=now)
        return "not configured"
    current = list(Study.objects.filter(case_id=case_id).order_by("pk")
                   .values("study_uid", "patient_id", "patient_id_issuer", "body_part", "other_patient_ids"))
    local_id = case.local_patient_id or next((s["patient_id"] for s in current if s["patient_id"]), "")
    issuer = next((s["patient_id_issuer"] for s in current if s["patient_id"] == local_id and s["patient_id_issuer"]),
                  "")
    body_part = next((s["body_part"] for s in current if s["body_part"]), "")
    ins = case.patient_ins or next((i for s in current if (i := rules.ins_of(s["other_patient_ids"] or []))), "")
    keys = rules.query_keys(ins=ins, local_patient_id=local_id, issuer=issuer,
                            pacs_has_ins=node.qr_ins_in_other_ids)
    if keys is None:
        _fail_query(case, node, "no_identifier")
        return "failed"
    pacs = _pacs(node)
    try:
        answers = rules.priors_of(scu.find_studies(pacs, keys), keys, exclude_uids=[s["study_uid"] for s in current],
                                  exclude_accession=case.accession_number)
        body_parts = {a.study_uid: a.body_part or (
            scu.find_body_part(pacs, study_uid=a.study_uid, modality=case.modality_id)
            if body_part and case.modality_id in a.modalities else "") for a in answers}
    except scu.PacsError as exc:
        _fail_query(case, node, exc.code, exc.detail)
        return "failed"
    except Exception as exc:  # a malformed answer, a socket error: recorded and shown, never a crash loop
        log.exception("priors query of case %s failed", case_id)
        _fail_query(case, node, "failed", type(exc).__name__)
        return "failed"
    with transaction.atomic():
        requested = []
        for a in answers:
            relevant = rules.is_relevant(modalities=a.modalities, body_part=body_parts[a.study_uid],
                                         case_modality=case.modality_id, case_body_part=body_part)
            prior, created = PriorStudy.objects.get_or_create(case_id=case_id, study_uid=a.study_uid, defaults={
                "node": node, "study_datetime": rules.study_datetime(a.study_date, a.study_time),
                "modalities": "\\".join(a.modalities)[:64], "description": a.description,
                "body_part": body_parts[a.study_uid], "accession_number": a.accession_number,
                "num_instances": a.num_instances, "relevant": relevant, "listed_at": now})
            if created and relevant:
                requested.append(prior.pk)
        PriorQuery.objects.filter(case_id=case_id).update(state=PriorQueryState.DONE, matched_by=keys.by,
                                                          finished_at=timezone.now())
        _audit("query", case, event="priors_query", outcome="done", node=node.ae_title, by=keys.by,
               found=[a.study_uid for a in answers])
        for pk in requested:
            prior_retrieve_request(case_id=case_id, prior_id=pk, automatic=True)
    return "done"


# --- retrieval ---------------------------------------------------------------------------------------------


def prior_retrieve_request(*, case_id: int, prior_id: int, user: Any = None, automatic: bool = False) -> PriorStudy:
    """Ask for a listed (or failed) prior to be retrieved. Audited; the worker sends the C-MOVE."""
    with transaction.atomic():
        prior = PriorStudy.objects.select_related("case").filter(pk=prior_id, case_id=case_id).first()
        if prior is None:
            raise NotFoundError(_("No such prior study for this case."))
        user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
        if not PriorStudy.objects.filter(pk=prior_id, state__in=[PriorState.AVAILABLE, PriorState.FAILED]).update(
                state=PriorState.REQUESTED, requested_at=timezone.now(), requested_by_id=user_id, automatic=automatic,
                error=""):
            raise ConflictError(_("This prior study is already retrieved or being retrieved."),
                                code="prior_not_available")
        _audit("retrieve", prior.case, event="prior_retrieve_request", study_uid=prior.study_uid, automatic=automatic)
        task_send_on_commit(RETRIEVE_TASK, prior_id)
    prior.refresh_from_db()
    return prior


# The reason of a failed retrieval as the timeline says it (stored in English, translated when shown:
# apps.worklist.timeline), by the error's code.
RETRIEVE_FAILURE_REASONS = {
    "unreachable": "the site PACS could not be reached",
    "timeout": "the site PACS did not answer in time",
    "not_arrived": "the images did not arrive",
}
RETRIEVE_FAILURE_REASON = "the site PACS answered with an error"


def _prior_label(prior: PriorStudy) -> str:
    """What the timeline names a prior by: modalities, description and date (Paris), else its UID."""
    when = timezone.localtime(prior.study_datetime).strftime("%d/%m/%Y") if prior.study_datetime else ""
    parts = [prior.modalities.replace("\\", "/"), prior.description, when]
    return " ".join(p for p in parts if p) or prior.study_uid


def _link(prior_ids: list[int], study: Study) -> int:
    """Mark the priors retrieved, linked to the stored study, and tell each case's timeline."""
    now = timezone.now()
    linked = PriorStudy.objects.filter(pk__in=prior_ids).update(state=PriorState.RETRIEVED, study=study, error="",
                                                                retrieved_at=now)
    for prior in PriorStudy.objects.filter(pk__in=prior_ids).select_related("case").order_by("pk"):
        case_event_add(case=prior.case, kind=CaseEventKind.PRIOR_RETRIEVED, at=now,
                       data={"prior": prior.pk, "study_uid": prior.study_uid, "study": study.pk,
                             "automatic": prior.automatic},
                       message=f"Prior study retrieved from the site PACS: {_prior_label(prior)}")
    return linked


def prior_retrieve_run(*, prior_id: int) -> str:
    """The worker's step: link the study if we hold it already, else C-MOVE it from the site PACS to the gateway."""
    if not PriorStudy.objects.filter(pk=prior_id, state=PriorState.REQUESTED).update(state=PriorState.RETRIEVING):
        return "not requested"
    prior = PriorStudy.objects.select_related("case", "node").get(pk=prior_id)
    case = prior.case
    with transaction.atomic():
        held = (Study.objects.filter(study_uid=prior.study_uid)
                .exclude(status=StudyStatus.RECEIVING).only("pk", "site_id").first())
        if held is not None:
            _link([prior_id], held)
            _audit("retrieve", case, event="prior_linked", study_uid=prior.study_uid, study_id=held.pk)
            return "held"
    node = prior.node if prior.node is not None and prior.node.qr_enabled else qr_node_for(case.site_id)
    if node is None:
        _fail_retrieve(prior, "failed", "no PACS configured for query/retrieve")
        return "failed"
    try:
        how, outcome, refused = _retrieve(node, study_uid=prior.study_uid)
    except scu.PacsError as exc:
        _fail_retrieve(prior, exc.code, exc.detail)
        return "failed"
    except Exception as exc:
        log.exception("retrieval of prior %s failed", prior_id)
        _fail_retrieve(prior, "failed", type(exc).__name__)
        return "failed"
    with transaction.atomic():
        _audit("retrieve", case, event=f"prior_{how}", study_uid=prior.study_uid, node=node.ae_title,
               completed=outcome.completed, failed=outcome.failed, warning=outcome.warning,
               **({"move_refused": refused} if refused else {}))
    if outcome.completed == 0 and outcome.failed:
        _fail_retrieve(prior, "failed", f"{outcome.failed} images not sent")
        return "failed"
    return "moved" if how == "move" else "got"


def _retrieve(node: DicomNode, *, study_uid: str) -> tuple[str, scu.MoveOutcome, str]:
    """C-MOVE the study to the gateway, or C-GET it: the node's choice, or a C-MOVE the PACS answered with a
    failure (it does not know the gateway's AE title, 0xA801, or cannot reach it: Orthanc's 0xC000) is tried again
    by C-GET, which needs no route from the site to the platform (images already sent are answered as the
    identical resends they are). ("move" | "get", the PACS's counts, why a C-MOVE was refused or "")"""
    pacs = _pacs(node)
    if node.qr_retrieve == QrRetrieve.GET:
        return "get", _get(node, pacs, study_uid=study_uid), ""
    try:
        return "move", scu.move_study(pacs, study_uid=study_uid, destination_ae=settings.PDS_DICOM_AET), ""
    except scu.PacsError as refused:
        if refused.status is None:  # unreachable, or no answer in time: a C-GET would fare no better
            raise
        log.warning("C-MOVE of %s refused by %s (%s): C-GET", study_uid, node.qr_ae_title, refused.detail)
        try:
            return "get", _get(node, pacs, study_uid=study_uid), refused.detail[:200]
        except scu.PacsError as exc:
            raise scu.PacsError(exc.code, f"{refused.detail}; then {exc.detail}"[:250], exc.status) from exc


def _get(node: DicomNode, pacs: scu.Pacs, *, study_uid: str) -> scu.MoveOutcome:
    """C-GET: each image the PACS sends back on our association is stored by the gateway's own ingest service
    (the same checks, durable file and directory before the row, dedupe), as sent by the node's site; the
    study then completes as any other (the gateway's reconciler) and is recognised as this prior."""
    from dicom_gateway.checks import Refusal
    from dicom_gateway.config import STORAGE_SOP_CLASSES, TRANSFER_SYNTAXES
    from dicom_gateway.handlers import Sender, ingest_service

    gateway = ingest_service()
    sender = Sender(calling_ae=node.ae_title, address=node.qr_host, site_id=node.establishment_id)

    def store(sop_class: str, sop_uid: str, ts: str, data: Any) -> Any:
        # Called in this thread, as pynetdicom reads the C-GET's answers: the receipt is the PACS's, as by C-MOVE.
        with acting_as(ActorContext(channel="worker", ip=node.qr_host, username=f"dicom:{node.ae_title}"[:150])):
            status = gateway.store(sender, sop_class=sop_class, sop_uid=sop_uid, ts=ts, data_set=data)
        return status.response() if isinstance(status, Refusal) else status

    return scu.get_study(pacs, study_uid=study_uid, sop_classes=STORAGE_SOP_CLASSES,
                         transfer_syntaxes=TRANSFER_SYNTAXES, store=store)


def _fail_retrieve(prior: PriorStudy, code: str, detail: str = "") -> None:
    with transaction.atomic():
        # Only from retrieving: a study that arrived meanwhile is retrieved, and stays so.
        if PriorStudy.objects.filter(pk=prior.pk, state=PriorState.RETRIEVING).update(
                state=PriorState.FAILED, error=f"{code}: {detail}"[:300]):
            reason = RETRIEVE_FAILURE_REASONS.get(code, RETRIEVE_FAILURE_REASON)
            case_event_add(case=prior.case, kind=CaseEventKind.PRIOR_RETRIEVAL_FAILED,
                           data={"prior": prior.pk, "study_uid": prior.study_uid, "error": code},
                           message=f"Prior study not retrieved from the site PACS ({reason}): {_prior_label(prior)}")
        _audit("retrieve", prior.case, event="prior_retrieve", outcome="failed", study_uid=prior.study_uid,
               error=code, detail=detail[:200])


def prior_arrived(*, study: Study) -> bool:
    """A complete study is a prior some case asked for (same site, a retrieval requested): link it to those
    cases and mark it ``prior`` (stored, never a case, never routed). Called by ``case_attach_study`` under its
    lock of the study row, in the completion's transaction."""
    ids = list(PriorStudy.objects.filter(study_uid=study.study_uid, case__site_id=study.site_id, study__isnull=True,
                                         state__in=[PriorState.REQUESTED, PriorState.RETRIEVING, PriorState.FAILED])
               .values_list("pk", flat=True))
    if not ids:
        return False
    _link(ids, study)
    Study.objects.filter(pk=study.pk).update(status=StudyStatus.PRIOR)
    case_ids = list(PriorStudy.objects.filter(pk__in=ids).values_list("case_id", flat=True))
    audit_record(action="receive", obj=study, patient_data=True, establishment_id=study.site_id,
                 details={"event": "prior_stored", "cases": case_ids, "instances": study.num_instances})
    return True


def priors_redrive(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Beat's safety net: send again the messages of steps left pending (a broker that was down), run again a query
    whose worker died, and fail a retrieval whose images never came."""
    now = now or timezone.now()
    PriorQuery.objects.filter(state=PriorQueryState.RUNNING, started_at__lt=now - RUNNING_STALE).update(
        state=PriorQueryState.PENDING)
    queries = list(PriorQuery.objects.filter(state=PriorQueryState.PENDING, requested_at__lt=now - STALE)
                   .values_list("case_id", flat=True)[:100])
    PriorQuery.objects.filter(case_id__in=queries).update(requested_at=now)
    priors = list(PriorStudy.objects.filter(state=PriorState.REQUESTED, requested_at__lt=now - STALE)
                  .values_list("pk", flat=True)[:100])
    PriorStudy.objects.filter(pk__in=priors).update(requested_at=now)
    with transaction.atomic():
        for case_id in queries:
            task_send_on_commit(QUERY_TASK, case_id)
        for pk in priors:
            task_send_on_commit(RETRIEVE_TASK, pk)
    lost = 0
    wait = dt.timedelta(minutes=settings.PDS_PRIORS_ARRIVAL_MINUTES)
    for prior in PriorStudy.objects.filter(state=PriorState.RETRIEVING, study__isnull=True,
                                           requested_at__lt=now - wait).select_related("case")[:100]:
        _fail_retrieve(prior, "not_arrived")
        lost += 1
    return {"queries": len(queries), "retrievals": len(priors), "not_arrived": lost}
