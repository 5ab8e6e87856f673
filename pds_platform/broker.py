"""The embedded Celery broker: kombu's filesystem transport, made safe for several processes on one host.

Web, gateway and beat publish while the worker consumes, each in its own process, through files under one
folder (``var/broker/`` by default)::

    in/                 messages ready to be consumed: ``<time_ns>_<uuid>.<queue>.msg``
    tmp/                messages being written (never listed by a consumer)
    processing/<owner>/ messages claimed by a consumer and not yet acknowledged; owner = ``<pid>.<start>@<host>``
    bad/                files that could not be decoded, set aside with an error in the log
    control/            exchange tables (which queue is bound to which exchange)

Invariants, each of which kombu's own filesystem transport breaks (its worker died on a half-written file):

- A message file appears in ``in/`` only complete: it is written under ``tmp/`` on the same filesystem, flushed
  (fsync) and renamed in. ``rename`` is atomic, so a consumer sees the whole file or nothing.
- A consumer claims a message by renaming it into its own ``processing/`` folder. Only one rename of a name can
  succeed, so exactly one consumer gets each message; the others get ``FileNotFoundError`` and move on.
- The claimed file is deleted only when the message is acknowledged (tasks acknowledge late) or once kombu has
  put it back in the queue (reject with requeue, restore at shutdown). A consumer killed with SIGKILL leaves its
  files in its folder; any consumer of the same host moves them back into ``in/`` once that process is gone:
  a message is never lost, and may run twice only when its consumer died before acknowledging it.
- A file that cannot be decoded is moved to ``bad/`` and logged: it never crashes the worker.
- An exchange table is replaced atomically (written aside, renamed over) under an exclusive lock, so a
  publisher never reads a half-written table.

Owners are told apart by pid, process start time (so a recycled pid is not taken for the dead process) and host
name (a consumer cannot tell whether a process of another host is alive, so it leaves its folder alone). The
embedded broker is meant for processes of one machine; several machines use Redis (``CELERY_BROKER_URL``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

SUFFIX = ".msg"
# A file left in tmp/ this long belongs to a publisher that died while writing it: that publish never happened.
STALE_TMP_SECONDS = 3600.0


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (Linux), "0" where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "0"
    # Field 22 (starttime); the command name (field 2) is in parentheses and may hold spaces.
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else "0"


def owner_name(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{_process_start(pid)}@{socket.gethostname()}"


def owner_alive(owner: str) -> bool | None:
    """True or False for an owner of this host, None when it cannot be told (another host, unknown name)."""
    ident, _, host = owner.rpartition("@")
    pid_text, _, start = ident.partition(".")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    # The pid exists: it is our owner only if it started when the owner did (pids are recycled).
    current = _process_start(pid)
    return start == "0" or current == "0" or current == start


def _write_file(path: Path, data: bytes, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


class Channel(filesystem.Channel):
    """Filesystem channel with atomic publish, exclusive claim, late acknowledgement and quarantine."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        # delivery tag -> claimed file, for messages handed to the consumer and not yet acknowledged.
        self._claimed: dict[str, Path] = {}
        # queue -> file names from the last listing of in/, oldest last (popped from the end).
        self._backlog: dict[str, list[str]] = {}
        # Queues consumed without acknowledgement (kombu's pidbox, Celery's replies and gossip).
        self._no_ack_queues: set[str] = set()
        self._owner_pid = 0
        self._owner_dir = Path()
        self._next_recovery = 0.0
        for folder in (self.data_folder_in, self.data_folder_out, self.tmp_folder, self.processing_folder,
                       self.bad_folder, self.control_folder):
            Path(folder).mkdir(parents=True, exist_ok=True)

    # --- layout ------------------------------------------------------------------------------------------
    def _option(self, name: str, default: str) -> Path:
        root = Path(self.transport_options.get("broker_folder") or ".")
        return Path(self.transport_options.get(name) or root / default)

    @property
    def data_folder_in(self) -> Path:  # type: ignore[override]
        return self._option("data_folder_in", "in")

    @property
    def data_folder_out(self) -> Path:  # type: ignore[override]
        return self._option("data_folder_out", "in")

    @property
    def tmp_folder(self) -> Path:
        """Must be on the filesystem of data_folder_out: rename does not cross filesystems."""
        return self._option("tmp_folder", "tmp")

    @property
    def processing_folder(self) -> Path:
        """Must be on the filesystem of data_folder_in, for the same reason."""
        return self._option("processing_folder", "processing")

    @property
    def bad_folder(self) -> Path:
        return self._option("bad_folder", "bad")

    @property
    def control_folder(self) -> Path:  # type: ignore[override]
        return self._option("control_folder", "control")

    @property
    def fsync(self) -> bool:
        return bool(self.transport_options.get("fsync", True))

    @property
    def recover_interval(self) -> float:
        return float(self.transport_options.get("recover_interval", 10.0))

    def _own_folder(self) -> Path:
        # Computed per process: a channel object may be inherited through fork.
        pid = os.getpid()
        if pid != self._owner_pid:
            self._owner_dir = self.processing_folder / owner_name(pid)
            self._owner_dir.mkdir(parents=True, exist_ok=True)
            self._owner_pid = pid
        return self._owner_dir

    @staticmethod
    def _check_queue(queue: str) -> None:
        if not queue or "/" in queue or os.sep in queue or queue.startswith("."):
            raise ChannelError(f"Invalid queue name for the filesystem broker: {queue!r}")

    # --- publish -----------------------------------------------------------------------------------------
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._check_queue(queue)
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}{SUFFIX}"
        tmp = self.tmp_folder / name
        try:
            _write_file(tmp, dumps(payload).encode(), self.fsync)
            os.rename(tmp, self.data_folder_out / name)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise ChannelError(f"Cannot add message {name!r} to the broker folder: {exc}") from exc

    # --- consume -----------------------------------------------------------------------------------------
    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        now = time.monotonic()
        if now >= self._next_recovery:
            self._next_recovery = now + self.recover_interval
            self.recover_dead_consumers()
        wanted = f"{queue}{SUFFIX}"
        backlog = self._backlog.get(queue)
        if not backlog:
            # One listing serves many gets: a name already taken by another consumer costs one failed rename.
            backlog = sorted((n for n in os.listdir(self.data_folder_in) if n.partition(".")[2] == wanted),
                             reverse=True)
            self._backlog[queue] = backlog
        while backlog:
            name = backlog.pop()
            claimed = self._claim(name)
            if claimed is None:
                continue  # another consumer won it
            payload = self._decode(claimed)
            if payload is None:
                continue
            # A fresh tag per delivery: the publish-time tag is shared by the copies of a fanout message and
            # by a message put back in the queue.
            tag = uuid.uuid4().hex
            payload["properties"]["delivery_tag"] = tag
            self._claimed[tag] = claimed
            if queue in self._no_ack_queues:
                self._release(tag)  # consumed without acknowledgement: there will be no ack to wait for
            return payload
        raise Empty()

    def _claim(self, name: str) -> Path | None:
        claimed = self._own_folder() / name
        try:
            os.rename(self.data_folder_in / name, claimed)
        except FileNotFoundError:
            if claimed.parent.is_dir():
                return None
            # Our own folder is gone (var/broker wiped while we run): make it again rather than skip every message.
            self._owner_pid = 0
            claimed = self._own_folder() / name
            try:
                os.rename(self.data_folder_in / name, claimed)
            except FileNotFoundError:
                return None
        return claimed

    def _decode(self, path: Path) -> dict[str, Any] | None:
        try:
            payload = loads(path.read_bytes())
            if not isinstance(payload, dict) or not isinstance(payload.get("properties"), dict):
                raise ValueError("not a kombu message")
            body = payload.get("body")
            if body:  # the consumer decodes it outside this method: a bad body must be caught here
                self.decode_body(body, payload["properties"].get("body_encoding"))
        except Exception as exc:  # whatever is wrong with one file, the worker goes on with the next
            self._quarantine(path, exc)
            return None
        return payload

    def _quarantine(self, path: Path, exc: Exception) -> None:
        target = self.bad_folder / path.name
        try:
            os.rename(path, target)
        except OSError:
            log.exception("broker: cannot move undecodable message %s to %s", path, self.bad_folder)
            return
        log.error("broker: undecodable message set aside in %s (%s: %s)", target, exc.__class__.__name__, exc)

    def _release(self, delivery_tag: str) -> None:
        path = self._claimed.pop(delivery_tag, None)
        if path is not None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        # A prefetch slot is free: wake the consuming thread if it waits for one (see Transport.drain_events).
        transport = self.connection
        if transport is not None:
            transport.slot_freed.set()

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super().basic_cancel(consumer_tag)
        if queue not in self._tag_to_queue.values():
            self._no_ack_queues.discard(queue)
        return result

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._release(message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple=multiple)
        self._release(delivery_tag)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        # With requeue, kombu puts a copy back through _restore first (which releases the claim); without it
        # the message is dropped, as AMQP does.
        super().basic_reject(delivery_tag, requeue=requeue)
        self._release(delivery_tag)

    def _restore(self, message: Any) -> None:
        # The copy is in in/ before the claimed file goes: a crash in between delivers twice, never zero times.
        super()._restore(message)
        self._release(message.delivery_tag)

    def recover_dead_consumers(self) -> int:
        """Move the claimed messages of consumers that died without acknowledging them back into in/."""
        own = owner_name()
        recovered = 0
        try:
            owners = list(os.scandir(self.processing_folder))
        except FileNotFoundError:
            owners = []
        for entry in owners:
            if entry.name == own or not entry.is_dir() or owner_alive(entry.name) is not False:
                continue
            moved = 0
            for name in os.listdir(entry.path):
                try:
                    # Same name: the message keeps its place at the head of the queue.
                    os.rename(os.path.join(entry.path, name), self.data_folder_in / name)
                    moved += 1
                except FileNotFoundError:
                    continue  # another consumer recovered it
            try:
                os.rmdir(entry.path)
            except OSError:
                pass
            if moved:
                log.warning("broker: %d unacknowledged message(s) of dead consumer %s put back in the queue",
                            moved, entry.name)
            recovered += moved
        self._sweep_stale_tmp()
        return recovered

    def _sweep_stale_tmp(self) -> None:
        limit = time.time() - STALE_TMP_SECONDS
        try:
            entries = list(os.scandir(self.tmp_folder))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    # --- exchange tables -----------------------------------------------------------------------------------
    def _read_table(self, exchange: str) -> list[Any] | None:
        file = self._exchange_file(exchange)
        try:
            table = loads(file.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*q) for q in table]

    def get_table(self, exchange: str) -> list[Any]:
        table = self._read_table(exchange)
        if table is None:
            # No table yet, or control/ was wiped while this process runs: the bindings that this process
            # declared still hold (kombu skips declaring them again), so its messages are not dropped.
            return [filesystem.exchange_queue_t(*q) for q in self.state.exchanges.get(exchange, {}).get("table", [])]
        return table

    def _update_table(self, exchange: str, change: Any) -> None:
        """Apply ``change(list of bindings) -> list or None`` under the exchange's lock, replacing atomically."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(f"{file}.lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                current = self._read_table(exchange) or []
                updated = change(list(current))
                if updated is None or updated == current:
                    return
                tmp = self.control_folder / f".{file.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
                _write_file(tmp, dumps([list(q) for q in updated]).encode(), self.fsync)
                os.replace(tmp, file)
            except OSError as exc:
                raise ChannelError(f"Cannot update {file}") from exc
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def add(bindings: list[Any]) -> list[Any] | None:
            return None if binding in bindings else [binding, *bindings]

        self._update_table(exchange, add)

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any) -> None:
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def remove(bindings: list[Any]) -> list[Any] | None:
            return [b for b in bindings if b != binding] if binding in bindings else None

        self._update_table(exchange, remove)


class Transport(filesystem.Transport):
    """The embedded broker's transport (``broker_transport = "pds_platform.broker:Transport"``)."""

    Channel = Channel
    global_state = virtual.BrokerState()
    # Pause after an empty poll (kombu's default is 1 s); an empty poll costs one listdir per queue.
    polling_interval = 0.1

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.slot_freed = threading.Event()

    @property
    def default_connection_params(self) -> dict[str, Any]:
        # A folder has no host: without this kombu warns "No hostname was supplied" in every process's log.
        return {"port": self.default_port}

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> None:
        """kombu's loop, except that the pause after an empty poll ends as soon as a message is acknowledged.

        A poll is also empty when the consumer's prefetch is full (late ack, prefetch = concurrency): kombu then
        sleeps a whole polling interval although the pool acknowledges a task a moment later, which caps a
        worker at a few tasks per interval. Acknowledgements come from the pool's result thread.
        """
        start = time.monotonic()
        cycle: Any = self.cycle
        while True:
            try:
                cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pause = self.polling_interval
                if timeout is not None:
                    left = timeout - (time.monotonic() - start)
                    if left <= 0:
                        raise TimeoutError() from None
                    pause = min(pause, left)
                self.slot_freed.wait(pause)
                self.slot_freed.clear()
