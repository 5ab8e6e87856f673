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

from dicom_gateway import metadata
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
    ds.StudyTime = "031500"
    meta = instance_meta_parse(encoded(ds), transfer_syntax_uid=TS, sop_class_uid=ds.SOPClassUID,
                               sop_instance_uid=ds.SOPInstanceUID)
    assert meta.modality == "CT" and meta.instance_number == 7 and meta.series_number == 3
    assert meta.patient_id == "PAT-0001" and meta.patient_id_issuer == "CHVIERZON"
    assert meta.other_patient_ids[0].value == "1234567890123" and meta.other_patient_ids[0].issuer == "INS-NIR"
    assert meta.patient_birth_date.isoformat() == "1950-01-02" and meta.study_time.hour == 3
    assert meta.relative_path() == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"


def never(series_uid: str) -> bool:
    return False


# Every refusal below is checked twice: with the description wanted (pydicom only) and without it (the
# quick header walk first, which must hand anything refusable to pydicom).
DESCRIBE = pytest.mark.parametrize("describe", [None, never], ids=["pydicom", "quick-first"])


@DESCRIBE
@pytest.mark.parametrize("mutate, status", [
    (lambda ds: delattr(ds, "StudyInstanceUID"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: delattr(ds, "SeriesInstanceUID"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: delattr(ds, "Modality"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: setattr(ds, "StudyInstanceUID", "1.2/../../etc"), STATUS_MISSING_ATTRIBUTE),
    (lambda ds: setattr(ds, "PixelData", ds.PixelData[:64]), STATUS_TRUNCATED),
])
def test_bad_datasets_are_refused_with_a_failure_status(mutate, status, describe):
    ds = instance()
    mutate(ds)
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(encoded(ds), transfer_syntax_uid=TS, describe=describe)
    assert exc.value.status == status


@DESCRIBE
@pytest.mark.parametrize("keep", [300, 400, 500, 700, 900, 1100, -1000])
def test_a_truncated_stream_is_refused_wherever_it_is_cut(keep, describe):
    data = encoded(instance(rows=64, cols=64))
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(data[:keep], transfer_syntax_uid=TS, describe=describe)
    assert exc.value.status in (STATUS_CANNOT_PARSE, STATUS_MISSING_ATTRIBUTE, STATUS_TRUNCATED)


@DESCRIBE
def test_garbage_does_not_parse(describe):
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(b"\x00" * 128 + b"DICM" + b"\xff" * 300, transfer_syntax_uid=TS, describe=describe)
    assert exc.value.status == STATUS_CANNOT_PARSE


@DESCRIBE
def test_sop_class_must_match_the_request(describe):
    ds = instance()
    with pytest.raises(InstanceRejected) as exc:
        instance_meta_parse(encoded(ds), transfer_syntax_uid=TS, sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
                            describe=describe)
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
        for describe in (None, never):
            with pytest.raises(InstanceRejected) as exc:
                instance_meta_parse(data[:-100], transfer_syntax_uid=transfer_syntax, describe=describe)
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


# --- the quick header walk agrees with pydicom --------------------------------------------------------


def undefined_length_sequences(ds):
    """pydicom writes sequences with explicit lengths unless told otherwise; modalities often do not."""
    ds["OtherPatientIDsSequence"].is_undefined_length = True
    for item in ds.OtherPatientIDsSequence:
        item.is_undefined_length_sequence_item = True
    nested = instance().OtherPatientIDsSequence[0]
    nested.OtherPatientIDsSequence = [instance().OtherPatientIDsSequence[0]]  # a sequence in an item
    ds.OtherPatientIDsSequence.append(nested)
    return ds


def with_private_and_long_elements(ds):
    ds.add_new(0x00091010, "LO", "VENDOR")
    ds.add_new(0x00091011, "UT", "x" * 300)
    ds.add_new(0x00091012, "OB", b"\x01\x02" * 40)
    return ds


def encapsulated(ds):
    ds.PixelData = encapsulate([b"\xff\xd8 not really a jpeg \xff\xd9"])
    ds["PixelData"].VR = "OB"
    return ds


@pytest.mark.parametrize("transfer_syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
@pytest.mark.parametrize("shape", [lambda ds: ds, undefined_length_sequences, with_private_and_long_elements],
                         ids=["plain", "undefined-length-sequences", "private-and-long-elements"])
def test_the_quick_walk_reads_what_pydicom_reads(transfer_syntax, shape):
    ds = shape(instance(number=12, rows=24, cols=20))
    data = encoded_as(ds, transfer_syntax)
    quick = metadata._quick_meta(data, transfer_syntax, ds.SOPClassUID, ds.SOPInstanceUID)
    slow = metadata._pydicom_meta(data, transfer_syntax_uid=transfer_syntax, sop_class_uid=ds.SOPClassUID,
                                  sop_instance_uid=ds.SOPInstanceUID, describe=never)
    assert quick is not None, "a plain dataset must not need pydicom"
    assert quick == slow and quick.instance_number == 12 and quick.modality == "CT"
    assert instance_meta_parse(data, transfer_syntax_uid=transfer_syntax, describe=never) == slow


def test_the_quick_walk_reads_encapsulated_pixel_data():
    ds = encapsulated(instance(rows=16, cols=16, number=3))
    data = encoded_as(ds, JPEGBaseline8Bit)
    quick = metadata._quick_meta(data, JPEGBaseline8Bit, "", "")
    assert quick is not None and quick == metadata._pydicom_meta(
        data, transfer_syntax_uid=JPEGBaseline8Bit, sop_class_uid="", sop_instance_uid="", describe=never)


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_big_endian_and_deflated_are_left_to_pydicom(transfer_syntax):
    ds = instance(number=5)
    data = encoded_as(ds, transfer_syntax)
    assert metadata._quick_meta(data, transfer_syntax, "", "") is None
    assert instance_meta_parse(data, transfer_syntax_uid=transfer_syntax, describe=never).instance_number == 5


@pytest.mark.parametrize("unusual", [
    lambda ds: setattr(ds, "InstanceNumber", "7.0"),  # decimal IS: pydicom's conversion decides
    lambda ds: setattr(ds, "Modality", ["CT", "MR"]),  # several values
    lambda ds: ds.add_new(0x00080060, "CS", "CT\x00"),  # NUL padding on a text value
])
def test_values_that_are_not_plain_are_left_to_pydicom(unusual):
    ds = instance(number=7)
    unusual(ds)
    data = encoded(ds)
    assert metadata._quick_meta(data, TS, "", "") is None
    try:
        expected = metadata._pydicom_meta(data, transfer_syntax_uid=TS, sop_class_uid="", sop_instance_uid="",
                                          describe=never)
    except InstanceRejected as exc:
        with pytest.raises(InstanceRejected) as again:
            instance_meta_parse(data, transfer_syntax_uid=TS, describe=never)
        assert again.value.status == exc.status
    else:
        assert instance_meta_parse(data, transfer_syntax_uid=TS, describe=never) == expected


def test_a_wrong_vr_for_rows_is_left_to_pydicom():
    ds = instance()
    del ds.Rows
    ds.add_new(0x00280010, "SS", 16)  # not US
    assert metadata._quick_meta(encoded(ds), TS, "", "") is None
