"""The pynetdicom internals the gateway's reactor overrides or reads, checked when it is imported.

reactor.py replaces private methods of pynetdicom's classes (``_read_pdu_data``, ``_run_reactor``,
``_create_association``...) and reads private attributes (the DUL's event queue and state machine, the
DIMSE message being received...). A pynetdicom release may rename or drop any of them; the gateway
would then either crash mid-association or, worse, quietly keep pynetdicom's slow loops (an override
that no longer overrides anything is never called). ``pynetdicom_hooks_check`` fails at import instead:
the exact version the overrides were written against, every overridden method on its base class, the
stock loops still calling what is overridden, and the instance attributes on a real (unstarted)
acceptor association.
"""

from __future__ import annotations

import inspect

import pynetdicom
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

PYNETDICOM_VERSION = "3.0.4"  # pinned in pyproject.toml: move both together, after re-reading reactor.py

# Methods overridden or called, by the class that must define them.
METHODS: dict[type, tuple[str, ...]] = {
    DULServiceProvider: ("_read_pdu_data", "_decode_pdu", "send_pdu", "kill_dul", "run_reactor",
                         "_is_transport_event", "_process_recv_primitive", "idle_timer_expired", "receive_pdu",
                         "is_alive", "join"),
    Association: ("run", "run_reactor", "_run_reactor", "_serve_request", "kill", "abort", "get_handlers"),
    DIMSEServiceProvider: ("receive_primitive", "send_msg"),
    AssociationSocket: ("recv", "ready", "close"),  # ready: a property
    RequestHandler: ("_create_association", "handle"),
    ThreadedAssociationServer: ("process_request_thread", "get_request", "server_bind", "server_activate",
                                "serve_forever", "shutdown"),
}
# A method that must still use a hook (a name in its code): otherwise the override is dead code.
USES: tuple[tuple[type, str, str], ...] = (
    (DULServiceProvider, "run_reactor", "_run_loop_delay"),
    (DULServiceProvider, "run_reactor", "_is_transport_event"),
    (DULServiceProvider, "_is_transport_event", "_read_pdu_data"),
    (Association, "run_reactor", "_run_reactor"),
    (RequestHandler, "handle", "_create_association"),
)
# Attributes set by the constructors and read or replaced by the reactor.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "assoc": ("dul", "dimse", "acse", "_kill", "_reactor_checkpoint", "_is_paused", "_accepted_cx", "_dul_ready",
              "is_established", "is_released", "is_aborted"),
    "dul": ("socket", "event_queue", "_recv_pdu", "to_provider_queue", "state_machine", "_run_loop_delay", "assoc",
            "artim_timer", "_idle_timer", "_kill_thread", "_target"),
    "dimse": ("message", "msg_queue", "maximum_pdu_size", "dul", "assoc"),
}


class PynetdicomMismatch(RuntimeError):
    """The installed pynetdicom is not the one the gateway's reactor overrides."""


def pynetdicom_hooks_missing() -> list[str]:
    """What the reactor relies on and the installed pynetdicom lacks (empty: all present)."""
    missing: list[str] = []
    if pynetdicom.__version__ != PYNETDICOM_VERSION:
        missing.append(f"version {PYNETDICOM_VERSION} (found {pynetdicom.__version__})")
    for cls, names in METHODS.items():
        missing += [f"{cls.__name__}.{n}" for n in names
                    if not (callable(getattr(cls, n, None)) or isinstance(getattr(cls, n, None), property))]
    for cls, method, name in USES:
        code = getattr(getattr(cls, method, None), "__code__", None)
        if code is None or name not in code.co_names:
            missing.append(f"{cls.__name__}.{method} using {name}")
    serve = getattr(Association, "_serve_request", None)
    if serve is not None and list(inspect.signature(serve).parameters)[1:] != ["msg", "context_id"]:
        missing.append("Association._serve_request(msg, context_id)")
    if not isinstance(getattr(ThreadedAssociationServer, "active_associations", None), property):
        missing.append("ThreadedAssociationServer.active_associations")
    assoc = Association(AE(), "acceptor")  # never started: no thread, no socket
    for owner, names in ATTRIBUTES.items():
        obj = assoc if owner == "assoc" else getattr(assoc, owner)
        missing += [f"{type(obj).__name__}().{n}" for n in names if not hasattr(obj, n)]
    return missing


def pynetdicom_hooks_check() -> None:
    """Raise ``PynetdicomMismatch`` naming every missing hook."""
    missing = pynetdicom_hooks_missing()
    if missing:
        raise PynetdicomMismatch("dicom_gateway.reactor overrides pynetdicom internals that this installation "
                                 f"does not have: {', '.join(missing)}. Pin pynetdicom=={PYNETDICOM_VERSION} "
                                 "or update reactor.py and dicom_gateway/hooks.py together.")
