"""apps.core.priority: work run at the lowest CPU priority in a thread of its own, the caller's unchanged."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from apps.core.priority import LOWEST, at_lowest_priority


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_the_work_runs_at_nice_19_and_the_caller_keeps_its_priority() -> None:
    before = _nice()
    seen = at_lowest_priority(lambda: (_nice(), threading.current_thread().name))
    assert seen == (LOWEST, "lowest-priority")
    assert _nice() == before


@pytest.mark.django_db(transaction=True)
def test_its_result_and_its_error_reach_the_caller_and_the_database_is_usable() -> None:
    from apps.regions.models import Region

    Region.objects.create(code="T1", name="Test")
    assert at_lowest_priority(lambda: Region.objects.filter(code="T1").count()) == 1

    def fails() -> None:
        raise ValueError("no such study")

    with pytest.raises(ValueError, match="no such study"):
        at_lowest_priority(fails)
