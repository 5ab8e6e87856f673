"""One statement committed on PostgreSQL while the caller waits for something else (the gateway's file flush).

The statement is sent with libpq's asynchronous calls on the psycopg connection underneath Django's, in
autocommit (an implicit transaction: the server commits it, WAL flush included, before it answers), prepared
once per connection; the caller's wait runs meanwhile; then the answer is read, the interpreter lock released
while waiting for it. psycopg's pipeline mode did the same, with BEGIN and COMMIT of their own, but its
Python-level bookkeeping was a fifth of the gateway's per-image Python time."""

from __future__ import annotations

import datetime as dt
import re
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, pq

_PREPARED_ON = "_pds_prepared"  # attribute of the psycopg connection: names of the statements prepared on it


@dataclass
class Overlapped:
    row: tuple[str | None, ...] | None  # the first row, as text (None: no row, or the statement failed)
    statement_error: psycopg.Error | None
    wait_error: BaseException | None
    sent_at: float  # time.monotonic() when the statement left


def _param(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat().encode()
    return str(value).encode()


def dollar_placeholders(sql: str) -> bytes:
    """``%s`` placeholders as libpq's ``$1, $2...``."""
    counter = iter(range(1, 1000))
    return re.sub(r"%s", lambda _: f"${next(counter)}", sql).encode()


def commit_while(raw: psycopg.Connection[Any], name: str, sql: bytes, params: Sequence[Any],
                 wait: Callable[[], object]) -> Overlapped:
    """Send the statement ``sql`` (prepared as ``name`` on this connection), then call ``wait`` while the server
    executes and commits it, then read its answer. ``raw`` must be idle, in autocommit."""
    pg = raw.pgconn
    prepared: set[str] = getattr(raw, _PREPARED_ON, None) or set()
    if name not in prepared:
        _results(pg, send=lambda: pg.send_prepare(name.encode(), sql), encoding=raw.info.encoding)
        prepared.add(name)
        setattr(raw, _PREPARED_ON, prepared)
    pg.send_query_prepared(name.encode(), [_param(v) for v in params])
    while pg.flush():
        select.select([], [pg.socket], [])
    sent_at = time.monotonic()
    wait_error: BaseException | None = None
    try:
        wait()
    except BaseException as exc:
        wait_error = exc
    try:
        results = _results(pg, send=None, encoding=raw.info.encoding)
    except psycopg.Error as exc:
        return Overlapped(None, exc, wait_error, sent_at)
    res = results[-1] if results else None
    row = None
    if res is not None and res.ntuples:
        row = tuple(None if (v := res.get_value(0, c)) is None else bytes(v).decode() for c in range(res.nfields))
    return Overlapped(row, None, wait_error, sent_at)


def _results(pg: pq.abc.PGconn, *, send: Callable[[], object] | None, encoding: str) -> list[pq.abc.PGresult]:
    """Send (if ``send``) and read every result of one command, waiting on the socket with the interpreter lock
    released; raises the server's error as psycopg's exception (Django wraps it) once the connection is idle."""
    if send is not None:
        send()
        while pg.flush():
            select.select([], [pg.socket], [])
    results: list[pq.abc.PGresult] = []
    error: psycopg.Error | None = None
    while True:
        while pg.is_busy():
            select.select([pg.socket], [], [])
            pg.consume_input()
        res = pg.get_result()
        if res is None:
            break
        if res.status == pq.ExecStatus.FATAL_ERROR and error is None:
            error = errors.error_from_result(res, encoding=encoding)
        results.append(res)
    if error is not None:
        raise error
    return results
