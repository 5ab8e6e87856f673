"""What the gateway checks before it acknowledges an image (dicom_gateway.checks; pure, no database)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from dicom_gateway.checks import MAX_DEPTH, STATUS_VALUE_OUT_OF_RANGE, Refusal, image_check
from dicom_gateway.metadata import (
    STATUS_CANNOT_PARSE,
    STATUS_SOP_CLASS_MISMATCH,
    STATUS_TRUNCATED,
    InstanceRejected,
)
from dicom_gateway.storage import part10_header
from tests.factories.dicom import make_instance


def instance(**kw) -> Dataset:
    return make_instance(study_uid=generate_uid(), series_uid=generate_uid(), **kw)


def encoded(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    bio = BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    return bio.getvalue()


def check(data: bytes, ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian, sop_class: str = "") -> None:
    image_check(data, transfer_syntax_uid=transfer_syntax, sop_class_uid=sop_class or str(ds.SOPClassUID),
                sop_instance_uid=str(ds.SOPInstanceUID))


def refused(data: bytes, ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian, sop_class: str = "") -> int:
    with pytest.raises(InstanceRejected) as exc:
        check(data, ds, transfer_syntax, sop_class)
    return exc.value.status


def pixel_header_at(data: bytes) -> int:
    return data.rindex(b"\xe0\x7f\x10\x00")


def rle(ds: Dataset) -> Dataset:
    ds.compress(RLELossless, encoding_plugin="pydicom")
    return ds


def nested(depth: int, undefined: bool) -> Callable[[Dataset], Dataset]:
    def shape(ds: Dataset) -> Dataset:
        item = Dataset()
        item.CodeValue = "X"
        for _ in range(depth - 1):
            outer = Dataset()
            outer.ContentSequence = Sequence([item])
            if undefined:
                outer["ContentSequence"].is_undefined_length = True
            item = outer
        ds.ContentSequence = Sequence([item])
        return ds
    return shape


def trailing_padding(ds: Dataset) -> Dataset:
    ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 16)
    return ds


@pytest.mark.parametrize("transfer_syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                                             DeflatedExplicitVRLittleEndian])
@pytest.mark.parametrize("shape", [lambda ds: ds, nested(MAX_DEPTH - 1, False), nested(MAX_DEPTH - 1, True),
                                   trailing_padding], ids=["plain", "nested", "nested-undefined", "padding"])
def test_well_formed_images_pass(transfer_syntax, shape):
    ds = shape(instance(rows=24, cols=20))
    check(encoded(ds, transfer_syntax), ds, transfer_syntax)


def test_odd_pixel_data_with_its_pad_byte_passes():
    ds = instance(rows=3, cols=3)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = bytes(9)  # written with a pad byte: 10
    data = encoded(ds)
    assert struct.unpack_from("<I", data, pixel_header_at(data) + 8)[0] == 10
    check(data, ds)


def test_encapsulated_pixel_data_is_walked_not_decoded():
    ds = rle(instance(rows=16, cols=16))
    check(encoded(ds, RLELossless), ds, RLELossless)
    multi = instance(rows=16, cols=16)
    multi.PixelData = encapsulate([b"\xff\xd8 one \xff\xd9", b"\xff\xd8 two \xff\xd9"], has_bot=True)
    multi["PixelData"].VR = "OB"
    multi.NumberOfFrames = 2
    check(encoded(multi, JPEGBaseline8Bit), multi, JPEGBaseline8Bit)


def test_a_class_without_a_modality_rule_takes_any_modality():
    ds = instance(sop_class=SecondaryCaptureImageStorage, modality="OT")
    check(encoded(ds), ds)


def test_ct_content_under_mr_image_storage_is_refused():
    """Issue 18, point 12: the CT slice sent as MR Image Storage was acknowledged."""
    ds = instance(sop_class=MRImageStorage, modality="CT")
    data = encoded(ds)
    assert refused(data, ds) == STATUS_SOP_CLASS_MISMATCH
    ct = instance()  # a CT dataset, MR in the request (and so in the file meta the gateway writes)
    assert refused(encoded(ct), ct, sop_class=MRImageStorage) == STATUS_SOP_CLASS_MISMATCH
    data = encoded(ct)  # the file meta alone disagrees (STOW-RS): same length, "2" -> "4" in group 2
    at = data.index(b"1.2.840.10008.5.1.4.1.1.2\x00", 128)
    assert at < 300
    mr_meta = data[:at] + b"1.2.840.10008.5.1.4.1.1.4\x00" + data[at + 26:]
    with pytest.raises(InstanceRejected, match="does not match the request and file meta"):
        image_check(mr_meta, transfer_syntax_uid=ExplicitVRLittleEndian)


def _set(keyword: str, value: object) -> Callable[[Dataset], Dataset]:
    def mutate(ds: Dataset) -> Dataset:
        setattr(ds, keyword, value)
        return ds
    return mutate


def _delete(keyword: str) -> Callable[[Dataset], Dataset]:
    def mutate(ds: Dataset) -> Dataset:
        delattr(ds, keyword)
        return ds
    return mutate


@pytest.mark.parametrize("mutate, status", [
    (_set("Modality", "MR"), STATUS_SOP_CLASS_MISMATCH),
    (_delete("Rows"), STATUS_SOP_CLASS_MISMATCH),
    (_delete("PhotometricInterpretation"), STATUS_SOP_CLASS_MISMATCH),
    (_set("BitsAllocated", 0), STATUS_SOP_CLASS_MISMATCH),
    (_set("BitsAllocated", 12), STATUS_SOP_CLASS_MISMATCH),
    (_set("BitsStored", 17), STATUS_SOP_CLASS_MISMATCH),
    (_set("SamplesPerPixel", 3), STATUS_SOP_CLASS_MISMATCH),
    (_set("NumberOfFrames", "0"), STATUS_SOP_CLASS_MISMATCH),
    (_set("NumberOfFrames", "2"), STATUS_TRUNCATED),  # one frame of pixels for two
    (_set("Columns", 15), STATUS_CANNOT_PARSE),  # more pixels than announced
    (_set("InstanceNumber", "2147483648"), STATUS_VALUE_OUT_OF_RANGE),
    (_set("SeriesNumber", "-2147483649"), STATUS_VALUE_OUT_OF_RANGE),
    (_set("PatientName", "DUPONT\x00^JEAN"), STATUS_VALUE_OUT_OF_RANGE),
    (_set("PatientID", "PAT\x00"), STATUS_VALUE_OUT_OF_RANGE),
    (_set("AccessionNumber", "\x00ACC"), STATUS_VALUE_OUT_OF_RANGE),
    (nested(MAX_DEPTH + 2, False), STATUS_CANNOT_PARSE),
    (nested(MAX_DEPTH + 2, True), STATUS_CANNOT_PARSE),
], ids=["modality", "no-rows", "no-photometric", "bits-0", "bits-12", "stored-17", "samples-3",
        "frames-0", "frames-2", "columns", "instance-number", "series-number", "nul-name", "nul-id", "nul-accession",
        "nested-34", "nested-34-undefined"])
def test_defects_are_refused_with_a_permanent_status(mutate, status):
    ds = mutate(instance(rows=16, cols=16))
    data = encoded(ds)
    got = refused(data, ds)
    assert got == status and got not in (0x0000, 0xA700)


def test_sequences_nested_5000_deep_are_refused():
    """Issue 18: two images with sequences nested 5,000 deep were acknowledged. Written by hand: pydicom cannot."""
    ds = instance(rows=16, cols=16)
    data = encoded(ds)
    opening = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000,
                                                                                        0xFFFFFFFF)
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    at = data.index(b"\x28\x00\x02\x00")  # (0028,0002): after every (0040,xxxx)? no: before the image group
    deep = data[:at] + opening * 5000 + closing * 5000 + data[at:]
    assert refused(deep, ds) == STATUS_CANNOT_PARSE


def test_native_pixel_data_declared_compressed_is_refused():
    ds = instance(rows=16, cols=16)
    data = encoded(ds)  # native bytes; the association says JPEG
    assert refused(data, ds, JPEGBaseline8Bit, ) == STATUS_SOP_CLASS_MISMATCH  # the file meta disagrees
    start = 144 + struct.unpack_from("<I", data, 140)[0]  # the dataset, after the file meta group
    meta_ts = part10_header(sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID,
                            transfer_syntax_uid=JPEGBaseline8Bit) + data[start:]  # as the gateway writes it
    with pytest.raises(InstanceRejected, match="native pixel data declared with the compressed"):
        check(meta_ts, ds, JPEGBaseline8Bit)


def test_number_of_frames_that_is_not_a_number_is_refused():
    ds = instance(rows=16, cols=16)
    ds.NumberOfFrames = "1"
    data = encoded(ds)
    at = data.index(struct.pack("<HH2sH", 0x0028, 0x0008, b"IS", 2))
    bad = data[:at + 8] + b"ab" + data[at + 10:]
    with pytest.raises(InstanceRejected, match="NumberOfFrames 'ab' is not a number") as exc:
        check(bad, ds)
    assert exc.value.status == STATUS_SOP_CLASS_MISMATCH


def test_undefined_length_native_pixel_data_is_refused():
    ds = instance(rows=16, cols=16)
    data = bytearray(encoded(ds))
    struct.pack_into("<I", data, pixel_header_at(data) + 8, 0xFFFFFFFF)
    assert refused(bytes(data), ds) in (STATUS_CANNOT_PARSE, STATUS_TRUNCATED)


@pytest.mark.parametrize("damage", [
    lambda data: data[:-8],  # no sequence delimiter
    lambda data: data + b"\x13\x37" * 7,  # random bytes after the items
    lambda data: data + struct.pack("<HHI", 0x0010, 0x0010, 4) + b"ABCD",  # an element that sorts before the pixels
    lambda data: data[:-20] + data[-8:],  # the last fragment cut, the delimiter kept
], ids=["no-delimiter", "garbage-after", "element-after", "cut-fragment"])
def test_encapsulated_framing_defects_are_refused(damage):
    ds = rle(instance(rows=16, cols=16))
    data = encoded(ds, RLELossless)
    check(data, ds, RLELossless)
    status = refused(damage(data), ds, RLELossless)
    assert status in (STATUS_CANNOT_PARSE, STATUS_TRUNCATED)


@pytest.mark.parametrize("cut", [1, 2, 100, 511])
def test_native_pixel_data_cut_or_longer_is_refused(cut):
    ds = instance(rows=16, cols=16)
    data = encoded(ds)
    at = pixel_header_at(data)
    length = struct.unpack_from("<I", data, at + 8)[0]
    shorter = bytearray(data[:-cut])
    struct.pack_into("<I", shorter, at + 8, length - cut)
    assert refused(bytes(shorter), ds) == STATUS_TRUNCATED
    longer = bytearray(data + bytes(cut * 2))
    struct.pack_into("<I", longer, at + 8, length + cut * 2)
    assert refused(bytes(longer), ds) == STATUS_CANNOT_PARSE


def test_a_refusal_answers_its_reason():
    rsp = Refusal(0xA900, "Modality MR is not allowed by SOP class 1.2.840.10008.5.1.4.1.1.2 (CT) " + "x" * 40).response()
    assert rsp.Status == 0xA900 and rsp.ErrorComment.startswith("Modality MR") and len(rsp.ErrorComment) == 64
