"""Issue 15, items 1-2: every audited write used to take one pg_advisory_xact_lock (the hash chain), so two
transactions that audit anything ran one after the other and the audit lock joined every deadlock. Now an
entry is one INSERT without a lock, and the sealer orders the entries afterwards, including one whose
transaction committed after later ids were already sealed.

Real PostgreSQL connections (one per thread), each holding its transaction open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction

from apps.audit.models import AuditSeal
from apps.audit.selectors import audit_verify
from apps.audit.services import audit_record, audit_seal

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="SQLite serialises writers by design; the global lock was PostgreSQL's")

WAIT = 10.0


class OpenAuditedWrite(threading.Thread):
    """In its own connection: BEGIN, write one audit entry, hold the transaction open until released."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.written = threading.Event()
        self.release = threading.Event()
        self.entry_id: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cur:
                    # Waiting on a lock longer than this fails the write instead of hanging the test.
                    cur.execute("SET LOCAL lock_timeout = '5s'")
                self.entry_id = audit_record(action="update", object_type="test.thread", object_id=self.name).pk
                self.written.set()
                if not self.release.wait(WAIT):
                    raise TimeoutError("never released")
        except BaseException as exc:  # reported to the test's thread
            self.error = exc
        finally:
            connections.close_all()

    def finish(self) -> None:
        self.release.set()
        self.join(WAIT)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error


def _until(event: threading.Event, thread: OpenAuditedWrite, what: str) -> None:
    if not event.wait(WAIT):
        raise AssertionError(f"{what}: {thread.error!r}" if thread.error else f"{what} did not happen in {WAIT} s")


def _other_connection(work: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(WAIT)
    assert not t.is_alive(), "blocked"
    if errors:
        raise errors[0]


def test_two_open_audited_writes_do_not_wait_for_each_other(transactional_db):
    first, second = OpenAuditedWrite("first"), OpenAuditedWrite("second")
    first.start()
    _until(first.written, first, "first write")
    second.start()
    # With the old advisory lock the second write waits for the first transaction (lock_timeout -> error).
    _until(second.written, second, "second write while the first transaction is open")
    second.finish()
    first.finish()
    report = audit_verify()
    assert report.intact and report.entries == 2


def test_the_sealer_seals_what_committed_late(transactional_db):
    late = OpenAuditedWrite("late")
    late.start()
    _until(late.written, late, "late write")
    on_time = audit_record(action="read", object_type="test.main", object_id="on-time")  # autocommit
    assert late.entry_id is not None and late.entry_id < on_time.pk  # smaller id, not yet committed

    assert audit_seal(settle_seconds=0).sealed == 1  # the late entry is invisible: only the later id
    late.finish()
    run = audit_seal(settle_seconds=0)
    assert (run.sealed, run.head_seq) == (1, 2)
    assert list(AuditSeal.objects.order_by("seq").values_list("entry_id", flat=True)) == [on_time.pk, late.entry_id]
    report = audit_verify()
    assert report.intact, report.problems
    assert (report.sealed, report.unsealed, report.checkpoints) == (2, 0, 2)


def test_one_sealer_at_a_time_and_writers_never_wait_for_it(transactional_db):
    audit_record(action="read", object_type="test.main", object_id="1")
    holding = threading.Event()
    release = threading.Event()

    def hold_the_sealer_lock() -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(7311420002)")
        holding.set()
        release.wait(WAIT)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(7311420002)")

    holder = threading.Thread(target=lambda: _other_connection(hold_the_sealer_lock), daemon=True)
    holder.start()
    assert holding.wait(WAIT)
    try:
        assert audit_seal(settle_seconds=0).busy  # a second sealer gives way at once
        _other_connection(lambda: audit_record(action="read", object_type="test.other", object_id="2"))
    finally:
        release.set()
        holder.join(WAIT)
    assert audit_seal(settle_seconds=0).sealed == 2
