"""A routing engine that fails with a real database error, the way the embedded default failed on its
PostgreSQL-only SQL: the seam is the routing selector ``rule_facts_for`` as the routing service imports it,
and what it raises is the database's own error (the failing statement really runs, so on PostgreSQL the
transaction really is aborted and has to be rolled back to its savepoint)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection


def rule_facts_failing(**kwargs: Any) -> Any:
    with connection.cursor() as cursor:
        cursor.execute("SELECT no_such_function(1)")
    raise AssertionError("the statement above must fail")


@contextmanager
def routing_broken() -> Iterator[None]:
    """Every routing decision fails inside the block; routing works again after it."""
    patch = pytest.MonkeyPatch()
    patch.setattr("apps.routing.services.rule_facts_for", rule_facts_failing)
    try:
        yield
    finally:
        patch.undo()
