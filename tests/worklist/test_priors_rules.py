"""The pure rules of the priors (apps.worklist.priors.rules): who the query names, which answers are the patient's,
which priors are relevant. No database."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.worklist.priors.rules import (
    BY_INS,
    BY_PATIENT_ID,
    INS_ISSUER,
    PARIS,
    PriorAnswer,
    QueryKeys,
    ins_of,
    is_patients,
    is_relevant,
    priors_of,
    query_keys,
    study_datetime,
)

INS = "150032A000000"


@pytest.mark.parametrize("ins, local, issuer, pacs_has_ins, expected", [
    (INS, "IPP1", "CHV", True, QueryKeys(BY_INS, INS, INS_ISSUER)),
    (INS, "IPP1", "CHV", False, QueryKeys(BY_PATIENT_ID, "IPP1", "CHV")),
    ("", "IPP1", "", True, QueryKeys(BY_PATIENT_ID, "IPP1", "")),
    ("", "", "CHV", True, None),
    (INS, "", "", False, None),
])
def test_query_keys(ins, local, issuer, pacs_has_ins, expected):
    assert query_keys(ins=ins, local_patient_id=local, issuer=issuer, pacs_has_ins=pacs_has_ins) == expected


@pytest.mark.parametrize("answer, keys, expected", [
    (PriorAnswer("1.1", patient_id="IPP1", issuer="CHV"), QueryKeys(BY_PATIENT_ID, "IPP1", "CHV"), True),
    (PriorAnswer("1.1", patient_id="IPP1", issuer=""), QueryKeys(BY_PATIENT_ID, "IPP1", "CHV"), True),
    (PriorAnswer("1.1", patient_id="IPP1", issuer="OTHER"), QueryKeys(BY_PATIENT_ID, "IPP1", "CHV"), False),
    (PriorAnswer("1.1", patient_id="IPP2"), QueryKeys(BY_PATIENT_ID, "IPP1", ""), False),
    # a PACS that ignored the sequence key answers every patient: only those with the INS are kept
    (PriorAnswer("1.1", other_ids=((INS, INS_ISSUER),)), QueryKeys(BY_INS, INS, INS_ISSUER), True),
    (PriorAnswer("1.1", other_ids=((INS, ""),)), QueryKeys(BY_INS, INS, INS_ISSUER), True),
    (PriorAnswer("1.1", other_ids=((INS, "1.2.3.4"),)), QueryKeys(BY_INS, INS, INS_ISSUER), False),
    (PriorAnswer("1.1", patient_id=INS), QueryKeys(BY_INS, INS, INS_ISSUER), False),
    (PriorAnswer("1.1", other_ids=(("250000000000000", INS_ISSUER),)), QueryKeys(BY_INS, INS, INS_ISSUER), False),
])
def test_is_patients(answer, keys, expected):
    assert is_patients(answer, keys) is expected


def test_priors_of_keeps_the_patients_studies_once_without_the_current_most_recent_first():
    keys = QueryKeys(BY_PATIENT_ID, "IPP1", "")
    answers = [PriorAnswer("1.1", patient_id="IPP1", study_date="20240101"),
               PriorAnswer("1.2", patient_id="IPP1", study_date="20250601"),
               PriorAnswer("1.2", patient_id="IPP1", study_date="20250601"),  # twice in the answers
               PriorAnswer("1.3", patient_id="IPP9", study_date="20250701"),  # another patient
               PriorAnswer("1.4", patient_id="IPP1", study_date="20260101"),  # the current study
               PriorAnswer("", patient_id="IPP1")]
    assert [a.study_uid for a in priors_of(answers, keys, exclude_uids=["1.4"])] == ["1.2", "1.1"]


@pytest.mark.parametrize("modalities, body, case_modality, case_body, expected", [
    (("CT",), "", "CT", "", True),
    (("CT", "SR"), "HEAD", "CT", "head", True),
    (("CT",), "HEAD", "CT", "CHEST", False),
    (("CT",), "", "CT", "CHEST", True),  # the prior's body part unknown: the modality decides
    (("MR",), "HEAD", "CT", "HEAD", False),
    ((), "", "CT", "", False),
])
def test_is_relevant(modalities, body, case_modality, case_body, expected):
    assert is_relevant(modalities=modalities, body_part=body, case_modality=case_modality,
                       case_body_part=case_body) is expected


def test_study_datetime_reads_dicom_date_and_time_in_paris():
    assert study_datetime("20250615", "143000.123") == dt.datetime(2025, 6, 15, 14, 30, tzinfo=PARIS)
    assert study_datetime("20250615", "") == dt.datetime(2025, 6, 15, tzinfo=PARIS)
    assert study_datetime("20250615", "14") == dt.datetime(2025, 6, 15, 14, tzinfo=PARIS)
    assert study_datetime("2025", "") is None
    assert study_datetime("20251341", "") is None


def test_priors_of_leaves_out_tonights_study_by_accession_number():
    keys = QueryKeys(BY_PATIENT_ID, "IPP1", "")
    answers = [PriorAnswer("1.1", patient_id="IPP1", accession_number="ACC-TONIGHT"),
               PriorAnswer("1.2", patient_id="IPP1", accession_number="ACC-OLD")]
    assert [a.study_uid for a in priors_of(answers, keys, exclude_uids=[], exclude_accession="ACC-TONIGHT")] == ["1.2"]
    assert len(priors_of(answers, keys, exclude_uids=[], exclude_accession="")) == 2


def test_ins_of_a_study_is_its_other_patient_id_of_the_ins_issuer():
    assert ins_of([{"id": "X1", "issuer": "CHV"}, {"id": INS, "issuer": INS_ISSUER, "type": "TEXT"}]) == INS
    assert ins_of([{"id": INS, "issuer": "1.2.250.1.213.1.4.10"}]) == INS  # NIA branch, same root
    assert ins_of([{"id": INS, "issuer": "INS-NIR"}]) == ""  # not the OID: not taken for an INS
    assert ins_of([]) == ""
