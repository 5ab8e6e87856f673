"""The reactor's fast path is what a real association takes: dcmtk storescu sends CT slices to pynetdicom
served with the gateway's request handler (reactor.GatewayRequestHandler), and the C-STORE handler sees the
gateway's classes, P-DATA-TF PDUs handed straight to DIMSE, a spooled data set and directly encoded
responses. With a pynetdicom whose hooks moved, the overrides would be dead code and these counters zero."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from dicom_gateway import storage
from dicom_gateway.reactor import GatewayAssociation, GatewayDIMSE, GatewayDUL, GatewayRequestHandler
from tests.factories.dicom import SeriesSpec, write_study

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("storescu"), reason="Debian dcmtk is required")]

CT = "1.2.840.10008.5.1.4.1.1.2"


def test_a_real_association_takes_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As server.build_ae: pynetdicom's default debug handlers listen to PDU events, and a PDU someone listens
    # to takes pynetdicom's own path.
    monkeypatch.setattr(_config, "LOG_HANDLER_LEVEL", "none")
    _, files = write_study(tmp_path / "study", [SeriesSpec(1, 3)], rows=256, cols=256)
    root = tmp_path / "root"
    (root / storage.INCOMING).mkdir(parents=True)
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        assoc = event.assoc
        data_set = event.request.DataSet
        with lock:
            seen.append({"classes": (type(assoc), type(assoc.dul), type(assoc.dimse)),
                         "fast_pdus": assoc.dul.fast_pdus, "spooled": isinstance(data_set, storage.SpooledDataSet),
                         "usable": isinstance(data_set, storage.SpooledDataSet) and data_set.usable(),
                         "fast_responses": assoc.dimse.fast_responses})
        if isinstance(data_set, storage.SpooledDataSet):
            data_set.discard()
        return 0x0000

    ae = AE(ae_title="FAST")
    ae.add_supported_context(CT, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    server = ThreadedAssociationServer(ae, ("127.0.0.1", 0), "FAST", ae.supported_contexts,
                                       evt_handlers=[(evt.EVT_C_STORE, on_store)],
                                       request_handler=GatewayRequestHandler)
    server.spool = root  # type: ignore[attr-defined]  # read by GatewayRequestHandler
    ae._servers.append(server)  # as AE.start_server does (shutdown removes it)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        out = subprocess.run(["storescu", "-aet", "SENDER", "-aec", "FAST", "-pdu", "16384", "127.0.0.1", str(port),
                              *map(str, files)], env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        server.shutdown()  # closes the socket
    assert len(seen) == 3
    assert all(s["classes"] == (GatewayAssociation, GatewayDUL, GatewayDIMSE) for s in seen)
    assert all(s["spooled"] and s["usable"] for s in seen)
    # 256x256x2 bytes in 16 KiB PDUs: several per image, all through the fast path
    assert seen[0]["fast_pdus"] >= 8 and seen[-1]["fast_pdus"] > seen[0]["fast_pdus"]
    # the responses to the first two images were encoded directly (the third is sent after the handler returns)
    assert seen[-1]["fast_responses"] == 2
