"""Issue 18, point 13: structured mutations of a valid CT slice (Hypothesis), sent over a real association to the
real gateway process (``manage.py run_gateway``), by pynetdicom sending each file's bytes as they are.

Whatever the mutation: the gateway never acknowledges (0x0000) an image pydicom cannot read back with its pixels,
never answers "out of resources" (0xA700: the sender would retry forever) to a defect, leaves no file without
its row and no study row without an image, and stays up."""

from __future__ import annotations

import shutil
import struct
import time
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    MRImageStorage,
    RLELossless,
    UltrasoundImageStorage,
    generate_uid,
)
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config

from apps.studies.models import Instance, Series, Study
from tests.factories.dicom import make_instance
from tests.integration.test_gateway import SENDER, dcm_files, gateway

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("echoscu"), reason="Debian dcmtk is required")]

AET = "PDS_GATEWAY"
BUDGET_SECONDS = 60
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEGBaseline8Bit, JPEG2000Lossless]
SUCCESS, OUT_OF_RESOURCES = 0x0000, 0xA700

# --- mutations: (kind, argument), applied to the dataset, then to the file meta, then to the encoded bytes ---

VALUES = {
    "Rows": [0, 1, 16, 15, 65535], "Columns": [0, 1, 15, 17], "BitsAllocated": [0, 1, 8, 12, 16, 32, 64],
    "BitsStored": [0, 8, 17], "SamplesPerPixel": [0, 3], "PixelRepresentation": [2],
    "NumberOfFrames": ["abc", "0", "-1", "2", "1"], "InstanceNumber": ["2147483648", "-2147483649", "7"],
    "SeriesNumber": ["2147483648", "99999999999"], "PatientName": ["DUPONT\x00JEAN", "A" * 200],
    "PatientID": ["PAT\x00", ""], "AccessionNumber": ["\x00", "ACC\x00X"], "StudyDate": ["00010101", "99991231"],
    "Modality": ["MR", "US", "", "ct"], "SOPClassUID": [MRImageStorage, UltrasoundImageStorage],
    "PhotometricInterpretation": ["RGB", "XYZ", "MONOCHROME1"], "StudyDescription": ["DESC\x00RIPTION"],
}
IS_TAGS = {"NumberOfFrames": 0x00280008, "InstanceNumber": 0x00200013, "SeriesNumber": 0x00200011}
DELETABLE = ["Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel", "PhotometricInterpretation",
             "PixelRepresentation", "PixelData", "SOPClassUID", "Modality", "StudyInstanceUID"]

dataset_mutation = st.one_of(
    st.sampled_from(sorted(VALUES)).flatmap(lambda k: st.tuples(st.just("set"), st.tuples(st.just(k),
                                                                                         st.sampled_from(VALUES[k])))),
    st.tuples(st.just("delete"), st.sampled_from(DELETABLE)),
    st.tuples(st.just("nest"), st.integers(min_value=1, max_value=80)),
)
meta_mutation = st.one_of(
    st.tuples(st.just("syntax"), st.sampled_from(SYNTAXES)),
    st.tuples(st.just("sop_class"), st.sampled_from([MRImageStorage, UltrasoundImageStorage])),
)
byte_mutation = st.one_of(
    st.tuples(st.just("cut"), st.integers(min_value=1, max_value=600)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("flip"), st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(1, 255))),
    st.tuples(st.just("pixel_length"), st.sampled_from([0xFFFFFFFF, 0, 1, 511, 513, 10**6])),
    st.tuples(st.just("drop_delimiter"), st.just(8)),
)
example = st.tuples(st.booleans(), st.lists(dataset_mutation, max_size=3), st.lists(meta_mutation, max_size=1),
                    st.lists(byte_mutation, max_size=2))


def mutated(encapsulated: bool, on_dataset, on_meta, on_bytes, sop_uid: str) -> tuple[bytes, str, str]:
    """(dataset bytes as sent, transfer syntax and SOP class of the request) of one example."""
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), rows=16, cols=16, sop_uid=sop_uid)
    if encapsulated:
        ds.compress(RLELossless, encoding_plugin="pydicom")
    ds["PixelData"].VR = "OB" if encapsulated else "OW"  # not ambiguous once BitsAllocated is gone
    raw: list[tuple[int, bytes]] = []  # IS values pydicom will not even hold: written into the bytes after
    with pydicom_config.disable_value_validation():
        for kind, arg in on_dataset:
            if kind == "set" and arg[0] in IS_TAGS:
                setattr(ds, arg[0], "1")
                raw.append((IS_TAGS[arg[0]], arg[1].encode() + b" " * (len(arg[1]) % 2)))
            elif kind == "set" and arg[0] in ("Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel",
                                            "PixelRepresentation"):
                ds.add_new(arg[0], "US", arg[1])
            elif kind == "set":
                setattr(ds, arg[0], arg[1])
            elif kind == "delete" and arg in ds:
                delattr(ds, arg)
            elif kind == "nest":
                item = Dataset()
                item.CodeValue = "X"
                for _ in range(arg):
                    outer = Dataset()
                    outer.ContentSequence = Sequence([item])
                    item = outer
                ds.ContentSequence = item.ContentSequence
        syntax = RLELossless if encapsulated else ExplicitVRLittleEndian
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_dataset(buf, ds)  # the dataset alone: the file meta is the request's (part10)
    data = buf.getvalue()
    for tag, value in raw:
        header = struct.pack("<HH2s", tag >> 16, tag & 0xFFFF, b"IS")
        at = data.find(header)
        if at >= 0:
            length = struct.unpack_from("<H", data, at + 6)[0]
            data = data[:at + 6] + struct.pack("<H", len(value)) + value + data[at + 8 + length:]
    sop_class = str(ds.get("SOPClassUID", CTImageStorage))
    for kind, arg in on_meta:
        if kind == "syntax":
            syntax = arg
        else:
            sop_class = arg
    # An implicit VR syntax over these explicit VR bytes is what a confused sender would send.
    for kind, arg in on_bytes:
        at = data.rfind(b"\xe0\x7f\x10\x00")
        if kind == "cut":
            data = data[:-arg]
        elif kind == "append":
            data += arg
        elif kind == "flip" and data:
            pos = arg[0] % len(data)
            data = data[:pos] + bytes([data[pos] ^ arg[1]]) + data[pos + 1:]
        elif kind == "pixel_length" and at >= 0 and at + 12 <= len(data):
            data = data[:at + 8] + struct.pack("<I", arg) + data[at + 12:]
        elif kind == "drop_delimiter":
            data = data[:-8]
    return data, syntax, sop_class


def part10(data: bytes, syntax: str, sop_class: str, sop_uid: str) -> bytes:
    meta = Dataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    buf = BytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue() + data


def readable_with_pixels(path: Path) -> str:
    """'' if pydicom reads the stored file back with its pixel data, else what fails."""
    try:
        ds = dcmread(path)
        if "PixelData" not in ds or not ds.PixelData:
            return "no pixel data"
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
            if not frames:
                return "no frame"
        arr = ds.pixel_array
        if arr.size == 0:
            return "empty pixel array"
    except Exception as exc:  # anything pydicom trips on
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_mutated_images_are_refused_or_read_back_whole(live_demo, process_env, tmp_path, monkeypatch):
    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)  # the bytes as they are
    with gateway(process_env, tmp_path, name="gateway-fuzz") as gw:
        ae = AE(ae_title=SENDER)
        for sop in (CTImageStorage, MRImageStorage, UltrasoundImageStorage):
            for syntax in SYNTAXES:  # one context per syntax: the gateway accepts one syntax per context
                ae.add_requested_context(sop, syntax)
        ae.dimse_timeout = ae.network_timeout = ae.acse_timeout = 30
        state: dict = {"assoc": None, "statuses": [], "started": time.monotonic(), "associations": 0}

        def association():
            assoc = state["assoc"]
            if assoc is None or not assoc.is_established:
                assoc = ae.associate("127.0.0.1", gw.port, ae_title=AET)
                assert assoc.is_established, "the gateway no longer accepts associations"
                state["assoc"], state["associations"] = assoc, state["associations"] + 1
            return assoc

        @settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(example)
        def one(case):
            if time.monotonic() - state["started"] > BUDGET_SECONDS:
                return  # the time budget is spent: the remaining examples pass
            encapsulated, on_dataset, on_meta, on_bytes = case
            sop_uid = generate_uid()
            data, syntax, sop_class = mutated(encapsulated, on_dataset, on_meta, on_bytes, sop_uid)
            path = tmp_path / "sent.dcm"
            path.write_bytes(part10(data, syntax, sop_class, sop_uid))
            rsp = association().send_c_store(path)
            status = int(rsp.Status) if "Status" in rsp else None
            state["statuses"].append(status)
            if status is None:  # aborted or timed out: the next example opens a new association
                state["assoc"] = None
                return
            assert status != OUT_OF_RESOURCES, f"a defect told to retry forever: {case} ({rsp})"
            row = Instance.objects.filter(sop_instance_uid=sop_uid).first()
            if status == SUCCESS:
                assert row is not None, f"acknowledged, not recorded: {case}"
                why = readable_with_pixels(gw.root / row.path)
                assert not why, f"acknowledged, unreadable ({why}): {case}"
            else:
                assert row is None, f"refused (0x{status:04X}), recorded: {case}"

        try:
            one()
        finally:
            if state["assoc"] is not None and state["assoc"].is_established:
                state["assoc"].release()
        statuses = state["statuses"]
        assert len(statuses) >= 50, f"only {len(statuses)} examples in {BUDGET_SECONDS} s"
        assert SUCCESS in statuses and any(s not in (SUCCESS, None) for s in statuses), statuses
        # No file without its row, no row without its file, nothing left half-written.
        paths = {p.relative_to(gw.root).as_posix() for p in dcm_files(gw.root)}
        assert paths == set(Instance.objects.values_list("path", flat=True))
        assert not list((gw.root / ".incoming").iterdir())
        # No study or series row without an image; no date before 1900 shown.
        assert not Study.objects.filter(num_instances=0).exists()
        assert not Series.objects.filter(num_instances=0).exists()
        assert not Study.objects.filter(study_datetime__year__lt=1900).exists()
        print(f"{len(statuses)} examples, {state['associations']} associations, "
              f"{statuses.count(SUCCESS)} acknowledged, "
              f"refused: { {f'0x{s:04X}': statuses.count(s) for s in set(statuses) if s not in (SUCCESS, None)} }, "
              f"aborted: {statuses.count(None)}")
