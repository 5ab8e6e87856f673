"""Durable writes never replace a stored file and leave no temporary file."""

from __future__ import annotations

import pytest

from dicom_gateway import storage


def test_durable_write_then_refuses_to_overwrite(tmp_path):
    storage.incoming_sweep(tmp_path)
    storage.durable_write(tmp_path, "1.2/1.2.3/1.2.3.4.dcm", (b"first",), tag="1.2.3.4", sha256="x")
    with pytest.raises(FileExistsError):
        storage.durable_write(tmp_path, "1.2/1.2.3/1.2.3.4.dcm", (b"second",), tag="1.2.3.4", sha256="y")
    assert (tmp_path / "1.2/1.2.3/1.2.3.4.dcm").read_bytes() == b"first"
    assert list((tmp_path / storage.INCOMING).iterdir()) == []


def test_sweep_removes_leftover_temporary_files(tmp_path):
    storage.incoming_sweep(tmp_path)
    (tmp_path / storage.INCOMING / "1.2.3.99.tmp").write_bytes(b"partial")
    assert storage.incoming_sweep(tmp_path) == 1


def test_room_check(tmp_path):
    assert storage.has_room(tmp_path, needed=1000, min_free_mb=1)
    assert not storage.has_room(tmp_path, needed=1000, min_free_mb=10**9)


def test_header_is_deterministic():
    a = storage.part10_header(sop_class_uid="1.2.840.10008.5.1.4.1.1.2", sop_instance_uid="1.2.3",
                              transfer_syntax_uid="1.2.840.10008.1.2.1")
    b = storage.part10_header(sop_class_uid="1.2.840.10008.5.1.4.1.1.2", sop_instance_uid="1.2.3",
                              transfer_syntax_uid="1.2.840.10008.1.2.1")
    assert a == b and a[128:132] == b"DICM"


@pytest.mark.parametrize("uid", ["1.2.3", "1.2.34"])  # odd and even lengths (UI padding)
def test_header_is_byte_identical_to_pydicoms_encoding(uid):
    from pydicom.dataset import FileMetaDataset
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    from pynetdicom.dsutils import encode_file_meta

    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    assert storage.part10_header(sop_class_uid="1.2.840.10008.5.1.4.1.1.2", sop_instance_uid=uid,
                                 transfer_syntax_uid="1.2.840.10008.1.2.1") == (
        b"\x00" * 128 + b"DICM" + encode_file_meta(meta))
