"""Durable writes never replace a stored file and leave no temporary file."""

from __future__ import annotations

import os

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


# --- SpooledDataSet: the data set written to an unnamed file as it arrives -----------------------------------

ROOT_FILES = "1.2/1.2.3/1.2.3.4.dcm"


def _incoming_descriptors(root) -> list[str]:
    """This process's open descriptors on files of ``root/.incoming`` (unnamed files show as '#inode (deleted)')."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root / storage.INCOMING) + "/"):
            found.append(target)
    return found


def _spool(root, header=b"HEADER", near=None):
    storage.incoming_sweep(root)
    return storage.SpooledDataSet(root, lambda: header, near)


@pytest.mark.parametrize("near", [False, True])
def test_spooled_fragments_become_the_file_once_flushed_and_named(tmp_path, near):
    """The fragments are written as they arrive; the last one starts the write-back; the handler's wait flushes
    the file and names it. With ``near`` (the directory of the sender's previous image) the unnamed file is
    created there, else in .incoming; either way it ends under its own name."""
    (tmp_path / "1.2" / "1.2.9").mkdir(parents=True)
    spool = _spool(tmp_path, near=str(tmp_path / "1.2" / "1.2.9") if near else None)
    spool.finish_after(3)  # as the DIMSE layer says when the last fragment's PDU arrives
    spool.write(b"frag1-")
    spool.write(memoryview(b"xxfrag2-")[2:])  # fragments arrive as views of the received PDU
    assert not spool.usable()  # not complete yet
    spool.write(b"frag3")
    assert spool.usable()  # the last fragment finished it
    assert spool.getvalue() == b"frag1-frag2-frag3"  # what the parser reads
    assert spool.file_bytes() == b"HEADERfrag1-frag2-frag3"
    link = spool.publish(ROOT_FILES)
    assert not (tmp_path / ROOT_FILES).exists()  # named only when the handler waits for it
    link.result()
    assert (tmp_path / ROOT_FILES).read_bytes() == b"HEADERfrag1-frag2-frag3"
    assert not link.cancel()  # done: nothing to cancel
    assert list((tmp_path / storage.INCOMING).iterdir()) == []
    assert _incoming_descriptors(tmp_path) == [] and not os.listdir(tmp_path / "1.2" / "1.2.9")


def test_a_link_cancelled_before_its_wait_leaves_nothing(tmp_path):
    spool = _spool(tmp_path)
    spool.write(b"data")
    spool.finish()
    link = spool.publish(ROOT_FILES)
    assert link.cancel()  # the image is refused after all
    with pytest.raises(OSError):
        link.result()
    assert not (tmp_path / ROOT_FILES).exists() and _incoming_descriptors(tmp_path) == []


def test_a_spooled_file_never_replaces_a_stored_one(tmp_path):
    (tmp_path / ROOT_FILES).parent.mkdir(parents=True)
    (tmp_path / ROOT_FILES).write_bytes(b"stored")
    spool = _spool(tmp_path)
    spool.write(b"other content")
    spool.finish()
    with pytest.raises(FileExistsError):
        spool.publish(ROOT_FILES).result()
    assert (tmp_path / ROOT_FILES).read_bytes() == b"stored"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["1.2.3.4.dcm"]
    assert _incoming_descriptors(tmp_path) == []


@pytest.mark.parametrize("finished", [True, False])  # refused once complete, or cut short by an abort
def test_a_discarded_spool_leaves_nothing(tmp_path, finished):
    spool = _spool(tmp_path)
    spool.write(b"partial image")
    assert len(_incoming_descriptors(tmp_path)) == 1
    if finished:
        spool.finish()
    spool.discard()
    assert _incoming_descriptors(tmp_path) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_no_spooling_for_other_messages_or_without_room_for_it(tmp_path):
    not_a_store = _spool(tmp_path, header=None)
    not_a_store.write(b"identifier")
    not_a_store.finish()
    assert not not_a_store.usable() and not_a_store.getvalue() == b"identifier"

    unavailable = storage.SpooledDataSet(tmp_path / "missing", lambda: b"HEADER")  # cannot open: no dir
    unavailable.write(b"data")
    unavailable.finish()
    assert not unavailable.usable() and unavailable.getvalue() == b"data"  # the handler writes from memory
    assert _incoming_descriptors(tmp_path) == []


def test_a_failed_flush_fails_the_publication(tmp_path, monkeypatch):
    spool = _spool(tmp_path)
    spool.write(b"data")

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage.os, "fdatasync", broken)
    spool.finish()
    with pytest.raises(OSError):
        spool.publish(ROOT_FILES).result()
    assert not (tmp_path / ROOT_FILES).exists()
    monkeypatch.undo()
    spool.discard()
    assert _incoming_descriptors(tmp_path) == []
