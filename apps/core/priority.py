"""Work that may wait for the CPU (a head start, not a promise): run in a thread of its own at the lowest
priority, so that on a machine short of CPU the routing decisions, alerts and pages go first (the gateway's
receivers are at ``PDS_DICOM_NICE``, 19 by default: they share with it). On Linux the nice value is a thread's
own (setpriority on the thread's id); the calling thread keeps its priority. Elsewhere, or where it is not allowed,
the work runs at the caller's priority."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")
LOWEST = 19


def at_lowest_priority(work: Callable[[], T]) -> T:
    """``work()`` in a thread at nice 19, waited for; its result, or its exception raised here. The thread's own
    database connections are closed when it ends."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)
        except (OSError, AttributeError):
            pass
        try:
            outcome["value"] = work()
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="lowest-priority")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
