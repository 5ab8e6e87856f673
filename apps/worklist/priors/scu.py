"""The DICOM network calls of the priors (pynetdicom as SCU): C-FIND (study root) of the patient's studies and of a
study's series, C-MOVE of a study to the gateway, C-GET of a study on our own association (each image handed to a
``store`` callable: the gateway's ingest service). No database here: plain values in, plain values out, and a
``PacsError`` whose ``code`` says what went wrong (shown translated on the case page, ``services.ERRORS``).

The calling AE title is the gateway's (``PDS_DICOM_AET``): the site PACS knows one AE of the platform, the one it
sends the retrieved images to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from apps.worklist.priors.rules import PriorAnswer, QueryKeys

PENDING = (0xFF00, 0xFF01)
UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")
# A patient's history is far less. More means the PACS ignored a matching key (Orthanc ignores the Other Patient IDs
# Sequence and answers every study it holds): the association is aborted and the query fails loudly, rather than
# keeping a truncated list that may have cut the patient's studies off.
MAX_ANSWERS = 500


class PacsError(Exception):
    """``code``: unreachable (no association), timeout (no answer in time), failed (an error status);
    ``status``: the DIMSE status of a failed answer, when there was one."""

    def __init__(self, code: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Pacs:
    host: str
    port: int
    ae_title: str  # called
    calling_ae: str
    timeout: float  # connection, association, each answer
    move_timeout: float  # a C-MOVE answers once all its images are sent


@dataclass(frozen=True)
class MoveOutcome:
    completed: int
    failed: int
    warning: int


def _ae(pacs: Pacs, context: Any, dimse_timeout: float) -> AE:
    ae = AE(ae_title=pacs.calling_ae)
    ae.add_requested_context(context)
    ae.connection_timeout = pacs.timeout
    ae.acse_timeout = pacs.timeout
    ae.network_timeout = max(pacs.timeout, dimse_timeout)
    ae.dimse_timeout = dimse_timeout
    return ae


def _associate(pacs: Pacs, ae: AE, **kw: Any) -> Any:
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title, **kw)
    if not assoc.is_established:
        detail = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "no connection"
        raise PacsError("unreachable", f"{pacs.ae_title}@{pacs.host}:{pacs.port} {detail}")
    return assoc


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _answer(ds: Dataset) -> PriorAnswer:
    other = tuple((_text(item, "PatientID"), _text(item, "IssuerOfPatientID"))
                  for item in ds.get("OtherPatientIDsSequence", []) or [])
    # Some PACS give the INS in Other Patient IDs (0010,1000, multi-valued) rather than the sequence.
    plain = ds.get("OtherPatientIDs", "")
    values = list(plain) if isinstance(plain, list | tuple) or type(plain).__name__ == "MultiValue" else [plain]
    other += tuple((str(v).strip(), "") for v in values if str(v or "").strip())
    modalities = ds.get("ModalitiesInStudy", "")
    mods = [str(m) for m in modalities] if not isinstance(modalities, str) else modalities.split("\\")
    count = ds.get("NumberOfStudyRelatedInstances", None)
    return PriorAnswer(study_uid=_text(ds, "StudyInstanceUID"), patient_id=_text(ds, "PatientID"),
                       issuer=_text(ds, "IssuerOfPatientID"), other_ids=other, study_date=_text(ds, "StudyDate"),
                       study_time=_text(ds, "StudyTime"), modalities=tuple(m.strip() for m in mods if m.strip()),
                       description=_text(ds, "StudyDescription")[:200],
                       accession_number=_text(ds, "AccessionNumber")[:64],
                       body_part=_text(ds, "BodyPartExamined")[:64],
                       num_instances=int(count) if str(count or "").strip().isdigit() else None)


def study_query(keys: QueryKeys) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in ("StudyInstanceUID", "StudyDate", "StudyTime", "ModalitiesInStudy", "StudyDescription",
                    "AccessionNumber", "PatientName", "NumberOfStudyRelatedInstances", "BodyPartExamined",
                    "OtherPatientIDs"):
        setattr(ds, keyword, "")
    if keys.by == "ins":
        ds.PatientID = ""
        ds.IssuerOfPatientID = ""
        item = Dataset()
        item.PatientID = keys.patient_id
        item.IssuerOfPatientID = keys.issuer
        ds.OtherPatientIDsSequence = [item]
    else:
        ds.PatientID = keys.patient_id
        ds.IssuerOfPatientID = keys.issuer
        ds.OtherPatientIDsSequence = []
    return ds


def _find(pacs: Pacs, query: Dataset) -> list[Dataset]:
    assoc = _associate(pacs, _ae(pacs, StudyRootQueryRetrieveInformationModelFind, pacs.timeout))
    found: list[Dataset] = []
    try:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status:  # an empty status: the answer did not come in time, or the association ended
                raise PacsError("timeout", "C-FIND")
            code = int(status.Status)
            if code in PENDING:
                if identifier is not None:
                    found.append(identifier)
                if len(found) > MAX_ANSWERS:
                    assoc.abort()
                    raise PacsError("failed", f"more than {MAX_ANSWERS} answers: the PACS ignored a matching key")
            elif code != 0x0000:
                raise PacsError("failed", f"C-FIND status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return found


def find_studies(pacs: Pacs, keys: QueryKeys) -> list[PriorAnswer]:
    return [_answer(ds) for ds in _find(pacs, study_query(keys))]


def find_body_part(pacs: Pacs, *, study_uid: str, modality: str) -> str:
    """BodyPartExamined of the study's series of this modality (a series-level attribute), or ''."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.BodyPartExamined = ""
    for series in _find(pacs, ds):
        if _text(series, "Modality").upper() == modality.upper() and _text(series, "BodyPartExamined"):
            return _text(series, "BodyPartExamined")[:64]
    return ""


def _study_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _until_done(assoc: Any, responses: Iterable[tuple[Dataset, Any]], name: str) -> MoveOutcome:
    """Read a C-MOVE's or C-GET's answers to the final one, release the association, and return its counts; a
    failure status (a warning is not one: some images were sent) raises ``PacsError``."""
    final: Dataset | None = None
    try:
        for status, _identifier in responses:
            if not status:  # no answer in time, or the association ended
                raise PacsError("timeout", name)
            if int(status.Status) not in PENDING:
                final = status
    finally:
        if assoc.is_established:
            assoc.release()
    if final is None:
        raise PacsError("timeout", f"{name} without a final status")
    code = int(final.Status)
    outcome = MoveOutcome(completed=int(final.get("NumberOfCompletedSuboperations", 0) or 0),
                          failed=int(final.get("NumberOfFailedSuboperations", 0) or 0),
                          warning=int(final.get("NumberOfWarningSuboperations", 0) or 0))
    if code not in (0x0000, 0xB000):
        raise PacsError("failed", f"{name} status 0x{code:04X}, {outcome.completed} sent, {outcome.failed} failed",
                        status=code)
    return outcome


def move_study(pacs: Pacs, *, study_uid: str, destination_ae: str) -> MoveOutcome:
    """C-MOVE the study to ``destination_ae`` (the gateway); returns once the PACS says it is done."""
    assoc = _associate(pacs, _ae(pacs, StudyRootQueryRetrieveInformationModelMove, pacs.move_timeout))
    responses = assoc.send_c_move(_study_identifier(study_uid), destination_ae,
                                  StudyRootQueryRetrieveInformationModelMove)
    return _until_done(assoc, responses, "C-MOVE")


def get_study(pacs: Pacs, *, study_uid: str, sop_classes: Iterable[str], transfer_syntaxes: Iterable[str],
              store: Callable[[str, str, str, Any], int]) -> MoveOutcome:
    """C-GET the study: the PACS sends each image back on this association (we take the Storage SCP role for
    ``sop_classes``), handed to ``store(sop_class, sop_uid, transfer_syntax, dataset_bytes)`` which answers the
    C-STORE's status. Returns once the PACS says it is done.

    Each compressed syntax has a presentation context of its own (the PACS picks the one its file is in, rather
    than transcoding, lossily or not, into the one syntax a shared context accepted); the uncompressed ones share
    one per SOP class."""
    classes = list(sop_classes)
    compressed = [ts for ts in transfer_syntaxes if ts not in UNCOMPRESSED]
    ae = _ae(pacs, StudyRootQueryRetrieveInformationModelGet, pacs.move_timeout)
    for uid in classes:
        ae.add_requested_context(uid, list(UNCOMPRESSED))
        for ts in compressed:
            if len(ae.requested_contexts) < 128:  # the protocol's limit (odd context ids 1..255)
                ae.add_requested_context(uid, ts)

    def on_store(event: Any) -> int:
        req = event.request
        return store(str(req.AffectedSOPClassUID or ""), str(req.AffectedSOPInstanceUID or ""),
                     str(event.context.transfer_syntax), req.DataSet)

    assoc = _associate(pacs, ae, ext_neg=[build_role(uid, scp_role=True) for uid in classes],
                       evt_handlers=[(evt.EVT_C_STORE, on_store)])
    responses = assoc.send_c_get(_study_identifier(study_uid), StudyRootQueryRetrieveInformationModelGet)
    return _until_done(assoc, responses, "C-GET")
