"""Two radiologists claim the same case at the same moment, on two database connections: exactly one wins."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from apps.core.errors import ConflictError
from apps.worklist import services
from tests.factories.worklist import make_case


@pytest.mark.django_db(transaction=True)
def test_two_radiologists_claim_at_the_same_moment_exactly_one_wins(live_demo: Any) -> None:
    demo = live_demo
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def claim(username: str) -> None:
        try:
            barrier.wait(timeout=10)
            services.case_claim(case_id=case.pk, user=demo.users[username])
            results[username] = "won"
        except ConflictError as exc:
            results[username] = exc.message
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in ("radiologue", "radio.durand1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["radio.durand1", "radiologue"]
    winners = [u for u, r in results.items() if r == "won"]
    assert len(winners) == 1
    loser = next(u for u in results if u not in winners)
    assert results[loser].startswith("Already claimed by") and demo.users[winners[0]].last_name in results[loser]
    case.refresh_from_db()
    assert case.claimed_by == demo.users[winners[0]]
    assert case.events.filter(kind="claimed").count() == 1
