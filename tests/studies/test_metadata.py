"""Parsing and checking received bytes (pure, no database)."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from dicom_gateway.metadata import (
    STATUS_CANNOT_PARSE,
    STATUS_MISSING_ATTRIBUTE,
    STATUS_SOP_CLASS_MISMATCH,
    STATUS_TRUNCATED,
    InstanceRejected,
    instance_meta_parse,
    parse_tm,
)
from tests.factories.dicom import make_instance

TS = ExplicitVRLittleEndian


def encoded(ds) -> bytes:
    bio = BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return bio.getvalue()


def instance(**kw):
    return make_instance(study_uid=kw.pop("study_uid", generate_uid()), series_uid=generate_uid(), **kw)


def test_metadata_of_a_ct_slice():
    ds = instance(number=7, series_number=3)
    meta = instance_meta_parse(encoded(ds), transfer_syntax_uid=TS, sop_class_uid=ds.SOPClassUID,
                               sop_instance_uid=ds.SOPInstanceUID)
    assert meta.modality == "CT" and meta.instance_number == 7 and meta.series_number == 3
    assert meta.patient_id == "PAT-0001" and meta.patient_id_issuer == "CHVIERZON"
    assert meta.other_patient_ids[0].value == "1234567890123" and meta.other_patient_ids[0].issuer == "INS-NIR"
    assert meta.patient_birth_date.isoformat() == "1950-01-02" and meta.study_time.hour == 3
    assert meta.relative_path() == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"


@pytest.mark.parametrize("mutate, status", [
    (lambda ds: delattr(ds, "StudyInstanceUID"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: delattr(ds, "SeriesInstanceUID"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: delattr(ds, "Modality"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: setattr(ds, "StudyInstanceUID", "1.2/../../etc"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: setattr(ds, "PixelData", ds.PixelData[:64]), STATUS_TRUNCATED),
])
def test_bad_datasets_are_refused_with_a_failure_status(mutate, status):
    ds = instance()
    mutate(ds)
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(encoded(ds), transfer_syntax_uid=TS)
    assert exc.value.status == status


@pytest.mark.parametrize("keep", [300, 400, 500, 700, 900, 1100, -1000])
def test_a_truncated_stream_is_refused_wherever_it_is_cut(keep):
    data = encoded(instance(rows=64, cols=64))
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(data[:keep], transfer_syntax_uid=TS)
    assert exc.value.status in (STATUS_CANNOT_PARSE, STATUS_MISSING_ATTRIBUTE, STATUS_TRUNCATED)


def test_garbage_does_not_parse():
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(b"\x00" * 128 + b"DICM" + b"\xff" * 300, transfer_syntax_uid=TS)
    assert exc.value.status == STATUS_CANNOT_PARSE


def test_sop_class_must_match_the_request():
    ds = instance()
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(encoded(ds), transfer_syntax_uid=TS, sop_class_uid="1.2.840.10008.5.1.4.1.1.4")
    assert exc.value.status == STATUS_SOP_CLASS_MISMATCH


@pytest.mark.parametrize("value, expected", [("031500", (3, 15, 0)), ("0315", (3, 15, 0)), ("23", (23, 0, 0)),
                                             ("031500.123", (3, 15, 0)), ("", None), ("99", None)])
def test_time_parsing(value, expected):
    t = parse_tm(value)
    assert (t.hour, t.minute, t.second) == expected if expected else t is None


def encoded_as(ds, transfer_syntax: str) -> bytes:
    """The same instance in another uncompressed transfer syntax (pydicom re-encodes)."""
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    bio = BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return bio.getvalue()


@pytest.mark.parametrize("transfer_syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                                             DeflatedExplicitVRLittleEndian])
def test_every_uncompressed_transfer_syntax_is_read_and_its_truncation_seen(transfer_syntax):
    ds = instance(rows=32, cols=32, number=4)
    data = encoded_as(ds, transfer_syntax)
    meta = instance_meta_parse(data, transfer_syntax_uid=transfer_syntax, sop_class_uid=ds.SOPClassUID)
    assert meta.sop_instance_uid == ds.SOPInstanceUID and meta.instance_number == 4 and meta.described
    if transfer_syntax != DeflatedExplicitVRLittleEndian:  # a cut deflate stream fails to inflate instead
        with pytest.raises(InstanceRejected) as exc:
            instance_meta_parse(data[:-100], transfer_syntax_uid=transfer_syntax)
        assert exc.value.status == STATUS_TRUNCATED


def test_the_description_is_read_only_when_asked_for():
    ds = instance(number=2, series_number=5)
    asked = []

    def describe(series_uid: str) -> bool:
        asked.append(series_uid)
        return False

    meta = instance_meta_parse(encoded(ds), transfer_syntax_uid=TS, describe=describe)
    assert asked == [ds.SeriesInstanceUID]
    assert meta.instance_number == 2 and meta.modality == "CT" and not meta.described
    assert meta.series_number is None and meta.patient_id == ""


def test_encapsulated_pixel_data_is_accepted_as_received():
    ds = instance(rows=16, cols=16)
    ds.PixelData = encapsulate([b"\xff\xd8 not really a jpeg \xff\xd9"])
    ds["PixelData"].VR = "OB"
    data = encoded_as(ds, JPEGBaseline8Bit)
    meta = instance_meta_parse(data, transfer_syntax_uid=JPEGBaseline8Bit)
    assert meta.sop_instance_uid == ds.SOPInstanceUID
