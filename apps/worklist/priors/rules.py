"""Pure rules of the priors (no database, no network): what the query names, which answers are the patient's,
which priors are relevant, how a DICOM date reads.

- The query names the patient by INS when the site PACS holds it in Other Patient IDs (``DicomNode.
  qr_ins_in_other_ids``) and we know it, else by the local patient id and its issuer; with neither, no query.
- An answer is kept only if it is the patient's by the key the query used (a PACS that ignores a matching key,
  a sequence match it does not support, must not bring another patient's studies), and is not one of the
  case's own studies.
- A prior is relevant (retrieved without being asked) when it has the case's modality and, when both body
  parts are known, the same body part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from apps.core.timezones import PARIS

# The INS (national health identifier) in DICOM: Other Patient IDs whose issuer is the INS-NIR OID (or its
# test / NIA branches, same root). An INS answer without an issuer is accepted on its value.
INS_ISSUER_ROOT = "1.2.250.1.213.1.4."
INS_ISSUER = "1.2.250.1.213.1.4.8"
BY_INS, BY_PATIENT_ID = "ins", "patient_id"


@dataclass(frozen=True)
class QueryKeys:
    by: str  # BY_INS or BY_PATIENT_ID
    patient_id: str
    issuer: str = ""


@dataclass(frozen=True)
class PriorAnswer:
    """One study-level C-FIND answer, as plain values."""

    study_uid: str
    patient_id: str = ""
    issuer: str = ""
    other_ids: tuple[tuple[str, str], ...] = ()  # (id, issuer) of Other Patient IDs Sequence
    study_date: str = ""
    study_time: str = ""
    modalities: tuple[str, ...] = ()
    description: str = ""
    accession_number: str = ""
    body_part: str = ""
    num_instances: int | None = None


def query_keys(*, ins: str, local_patient_id: str, issuer: str, pacs_has_ins: bool) -> QueryKeys | None:
    if ins and pacs_has_ins:
        return QueryKeys(by=BY_INS, patient_id=ins, issuer=INS_ISSUER)
    if local_patient_id:
        return QueryKeys(by=BY_PATIENT_ID, patient_id=local_patient_id, issuer=issuer)
    return None


def ins_of(other_ids: Iterable[dict[str, str]]) -> str:
    """The INS a study carries in its Other Patient IDs (as stored: ``{"id", "issuer", "type"}``), or ''. For a
    case without a request (origin DICOM) it is the only INS we have."""
    return next((str(o.get("id", "")) for o in other_ids
                 if str(o.get("issuer", "")).startswith(INS_ISSUER_ROOT) and o.get("id")), "")


def is_patients(answer: PriorAnswer, keys: QueryKeys) -> bool:
    """The answer is the patient's by the key the query used."""
    if keys.by == BY_INS:
        return any(pid == keys.patient_id and (not iss or iss.startswith(INS_ISSUER_ROOT))
                   for pid, iss in answer.other_ids)
    if answer.patient_id != keys.patient_id:
        return False
    return not (keys.issuer and answer.issuer and answer.issuer != keys.issuer)


def priors_of(answers: Iterable[PriorAnswer], keys: QueryKeys, *, exclude_uids: Iterable[str],
              exclude_accession: str = "") -> list[PriorAnswer]:
    """The patient's studies, each once, without the case's own (by UID, and by the case's accession number when
    it has one: tonight's study under another UID is not a prior), most recent first."""
    excluded = set(exclude_uids)
    kept: dict[str, PriorAnswer] = {}
    for a in answers:
        if exclude_accession and a.accession_number == exclude_accession:
            continue
        if a.study_uid and a.study_uid not in excluded and a.study_uid not in kept and is_patients(a, keys):
            kept[a.study_uid] = a
    return sorted(kept.values(), key=lambda a: (a.study_date, a.study_time), reverse=True)


def _norm(text: str) -> str:
    return text.strip().upper().replace(" ", "")


def is_relevant(*, modalities: Iterable[str], body_part: str, case_modality: str, case_body_part: str) -> bool:
    """Same modality; and the same body part when both are known (BodyPartExamined)."""
    if _norm(case_modality) not in {_norm(m) for m in modalities}:
        return False
    if body_part.strip() and case_body_part.strip():
        return _norm(body_part) == _norm(case_body_part)
    return True


def study_datetime(date: str, time: str) -> dt.datetime | None:
    """DICOM DA (YYYYMMDD) and TM (HHMMSS.frac, parts optional) in Europe/Paris, as an aware datetime."""
    date = date.strip()
    if len(date) != 8 or not date.isdigit():
        return None
    digits = time.strip().split(".")[0]
    digits = digits if digits.isdigit() else ""
    hh, mm, ss = (int(digits[i:i + 2]) if len(digits) > i else 0 for i in (0, 2, 4))
    try:
        naive = dt.datetime(int(date[:4]), int(date[4:6]), int(date[6:]), min(hh, 23), min(mm, 59), min(ss, 59))
    except ValueError:
        return None
    return naive.replace(tzinfo=PARIS)
