"""The import-time check of the pynetdicom internals the gateway's reactor overrides."""

from __future__ import annotations

import pynetdicom
import pytest
from pynetdicom.dul import DULServiceProvider

from dicom_gateway import hooks


def test_the_pinned_pynetdicom_has_every_hook() -> None:
    assert hooks.pynetdicom_hooks_missing() == []
    hooks.pynetdicom_hooks_check()


def test_another_version_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pynetdicom, "__version__", "3.1.0")
    with pytest.raises(hooks.PynetdicomMismatch, match=r"version 3\.0\.4 \(found 3\.1\.0\)"):
        hooks.pynetdicom_hooks_check()


def test_a_renamed_hook_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(DULServiceProvider, "_read_pdu_data")
    # run_reactor's own use of it is still there; only the method itself is missing
    assert hooks.pynetdicom_hooks_missing() == ["DULServiceProvider._read_pdu_data"]


def test_a_loop_that_no_longer_calls_the_hook_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def run_reactor(self: DULServiceProvider) -> None:  # a release that stopped napping on _run_loop_delay
        self._is_transport_event()

    monkeypatch.setattr(DULServiceProvider, "run_reactor", run_reactor)
    missing = hooks.pynetdicom_hooks_missing()
    assert any("run_reactor using _run_loop_delay" in m for m in missing)


def test_a_missing_instance_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    init = DULServiceProvider.__init__

    def without_recv_queue(self: DULServiceProvider, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        del self._recv_pdu

    monkeypatch.setattr(DULServiceProvider, "__init__", without_recv_queue)
    assert hooks.pynetdicom_hooks_missing() == ["DULServiceProvider()._recv_pdu"]
