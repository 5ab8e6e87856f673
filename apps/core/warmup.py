"""Warm-up hooks: work a worker does once, before it forks its pool, instead of in the first task of each child."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_hooks: list[Callable[[], None]] = []


def warm_up_register(hook: Callable[[], None]) -> None:
    """Called from an app's ``AppConfig.ready()``: ``hook`` imports what its tasks import lazily, fills the
    per-process caches they read (a calendar's public holidays, a translation catalogue), so a child forked
    afterwards starts warm. A hook may read the database; it must not write."""
    if hook not in _hooks:
        _hooks.append(hook)


def warm_up_run() -> float:
    """Run every hook (Celery's ``worker_init``, in the worker's main process, before the pool forks), then
    close the database connections they opened: a connection is never shared with forked children. A hook that
    fails is logged and skipped: warming up is an optimisation, never a reason not to start. Returns the
    seconds spent."""
    from django.db import connections

    t0 = time.perf_counter()
    for hook in _hooks:
        try:
            hook()
        except Exception:
            log.warning("warm-up hook %s failed; its work happens at the first task instead", hook.__qualname__,
                        exc_info=True)
    connections.close_all()
    return time.perf_counter() - t0
