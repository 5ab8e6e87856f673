"""The DICOM gateway: C-ECHO and C-STORE SCP for the requesting sites.

Process model: a parent binds the listening socket(s), starts ``PDS_DICOM_WORKERS`` child
processes that inherit them (pynetdicom is CPU-bound: one process per core), restarts a child
that dies, beats the "gateway" heartbeat and runs the study reconciler every second (so that
a study completes and is handed to routing even while the broker is down). Each child runs
pynetdicom on the shared socket; an idle child wins the race for ``accept()`` because a busy
one waits a moment before accepting.

Per image: while it arrives, its bytes go to an unnamed file (reactor.GatewayDIMSE,
storage.SpooledDataSet), whose write-back starts once the last fragment is written. Then
``Gateway.on_store``: parse the header from the received bytes (no decode/re-encode; after the
first image of a series, a walk over the element headers (elements.walk), with pydicom judging
anything not plain), check free space, send the Instance row and its COMMIT (on PostgreSQL, pipelined),
then flush the file and give it its final name (fdatasync, link, fsync dir; without spooling: temp, fsync,
link, fsync dir, in a helper thread overlapping the parse) while PostgreSQL commits, and only once both are
durable answer 0x0000. Any failure answers a failure status and leaves no file that a row does not
acknowledge, and no row without its file (removed again, or by the sweep after a crash).

Where the code lives: ``config`` (GatewayConfig, the accepted SOP classes and transfer syntaxes, the TLS
context), ``handlers`` (class Gateway, in the association threads), ``child`` (child_main and its acceptor
servers), ``supervisor`` (serve: the parent). This module re-exports their public names; a test that
replaces one patches it in the module that uses it.
"""

from dicom_gateway.child import SharedSocketServer, build_ae, child_main
from dicom_gateway.config import (
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    VERIFICATION,
    GatewayConfig,
    tls_context,
)
from dicom_gateway.handlers import (
    HOLD_IDLE_SECONDS,
    HOLD_RENEW_SECONDS,
    ORPHAN_GRACE_SECONDS,
    STORAGE_FULL_INCIDENT_EVERY,
    Gateway,
    Sender,
)
from dicom_gateway.reject import REJECT_FLUSH_SECONDS
from dicom_gateway.supervisor import RECONCILE_SECONDS, serve

__all__ = [
    "HOLD_IDLE_SECONDS", "HOLD_RENEW_SECONDS", "ORPHAN_GRACE_SECONDS", "RECONCILE_SECONDS",
    "REJECT_FLUSH_SECONDS", "STORAGE_FULL_INCIDENT_EVERY", "STORAGE_SOP_CLASSES", "TRANSFER_SYNTAXES",
    "VERIFICATION", "Gateway", "GatewayConfig", "Sender", "SharedSocketServer", "build_ae", "child_main",
    "serve", "tls_context",
]
