"""The embedded broker's channel (pds_platform/broker.py) through kombu, with real files and real processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

import kombu
import pytest

from pds_platform.broker import Transport, owner_alive, owner_name

FORK = multiprocessing.get_context("fork")


@pytest.fixture(autouse=True)
def fresh_broker_state():
    """kombu keeps the declared bindings per process; each test has its own broker folder."""
    Transport.global_state.clear()


def connect(folder: Path, **options: object) -> kombu.Connection:
    return kombu.Connection("filesystem://", transport="pds_platform.broker:Transport",
                            transport_options={"broker_folder": str(folder), "fsync": False, **options})


def jobs(channel: object) -> kombu.Queue:
    queue = kombu.Queue("jobs", kombu.Exchange("jobs"), routing_key="jobs")(channel)
    queue.declare()
    return queue


def publish(folder: Path, bodies: list[object], **options: object) -> None:
    with connect(folder, **options) as conn:
        queue = jobs(conn.default_channel)
        producer = conn.Producer()
        for body in bodies:
            producer.publish(body, exchange=queue.exchange, routing_key="jobs")


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_a_message_is_in_the_queue_only_once_it_is_complete(tmp_path):
    """A reader listing in/ while another process publishes large messages never finds a partial file
    (kombu's own transport wrote into the final name, and its worker died on such a file)."""
    publish(tmp_path, [])  # creates the folders
    body = {"blob": "x" * 300_000}
    writer = FORK.Process(target=publish, args=(tmp_path, [body] * 100), kwargs={"fsync": True})
    writer.start()
    seen = 0
    inbox = tmp_path / "in"
    while writer.is_alive() or seen == 0:
        for name in os.listdir(inbox):
            try:
                data = (inbox / name).read_bytes()
            except FileNotFoundError:
                continue
            payload = json.loads(data)  # raises on a partial file
            assert payload["properties"]["delivery_tag"]
            seen += 1
    writer.join(10)
    assert writer.exitcode == 0
    assert seen > 0 and len(os.listdir(inbox)) == 100 and os.listdir(tmp_path / "tmp") == []


def _drain(folder: str, out: str, start: float) -> None:
    while time.time() < start:  # both consumers start together
        pass
    got = []
    with connect(Path(folder)) as conn:
        queue = jobs(conn.default_channel)
        while (message := queue.get()) is not None:
            got.append(message.payload)
            message.ack()
    Path(out).write_text(json.dumps(got))


def test_two_consumers_claiming_the_same_queue_each_message_has_exactly_one_winner(tmp_path):
    publish(tmp_path, list(range(1000)))
    start = time.time() + 0.5
    consumers = [FORK.Process(target=_drain, args=(str(tmp_path), str(tmp_path / f"got{i}.json"), start))
                 for i in range(2)]
    for c in consumers:
        c.start()
    for c in consumers:
        c.join(30)
        assert c.exitcode == 0
    first, second = (json.loads((tmp_path / f"got{i}.json").read_text()) for i in range(2))
    assert sorted(first + second) == list(range(1000))  # every message, none twice
    assert first and second, "both consumers took part"
    assert files(tmp_path / "in") == [] and files(tmp_path / "processing") == []


def test_late_ack_keeps_the_claimed_file_until_the_message_is_acknowledged(tmp_path):
    publish(tmp_path, ["a", "b"])
    with connect(tmp_path) as conn:
        queue = jobs(conn.default_channel)
        a = queue.get()
        claimed = files(tmp_path / "processing")
        assert a.payload == "a" and len(claimed) == 1 and len(files(tmp_path / "in")) == 1
        a.ack()
        assert files(tmp_path / "processing") == []

        b = queue.get()
        b.reject(requeue=True)  # kombu puts a copy back; the claimed file goes
        assert files(tmp_path / "processing") == [] and len(files(tmp_path / "in")) == 1
        again = queue.get()
        assert again.payload == "b"
        again.reject(requeue=False)  # dropped, as AMQP does
        assert files(tmp_path / "processing") == [] and files(tmp_path / "in") == []


def test_messages_consumed_without_acknowledgement_are_not_kept(tmp_path):
    """kombu's pidbox and Celery's replies consume with no_ack: nothing must wait in processing/ for an ack
    that never comes (it would be delivered again once the process is gone)."""
    publish(tmp_path, ["a", "b", "c"])
    with connect(tmp_path) as conn:
        queue = jobs(conn.default_channel)
        assert queue.get(no_ack=True).payload == "a"
        got = []
        with conn.Consumer([queue], callbacks=[lambda body, message: got.append(body)], no_ack=True):
            conn.drain_events(timeout=2)
            conn.drain_events(timeout=2)
        assert got == ["b", "c"]
        assert files(tmp_path / "processing") == [] and files(tmp_path / "in") == []


def test_a_consumer_whose_folder_was_wiped_goes_on(tmp_path):
    publish(tmp_path, ["a", "b"])
    with connect(tmp_path) as conn:
        queue = jobs(conn.default_channel)
        queue.get().ack()
        for folder in (tmp_path / "processing").iterdir():
            folder.rmdir()
        b = queue.get()
        assert b.payload == "b" and len(files(tmp_path / "processing")) == 1
        b.ack()


def test_closing_the_channel_puts_unacknowledged_messages_back(tmp_path):
    publish(tmp_path, ["a"])
    with connect(tmp_path) as conn:
        assert jobs(conn.default_channel).get().payload == "a"  # not acknowledged
    assert files(tmp_path / "processing") == [] and len(files(tmp_path / "in")) == 1
    with connect(tmp_path) as conn:
        assert jobs(conn.default_channel).get().payload == "a"


def test_undecodable_files_are_set_aside_and_the_consumer_goes_on(tmp_path, caplog):
    publish(tmp_path, [])
    inbox = tmp_path / "in"
    (inbox / "00000000000000000001_half.jobs.msg").write_text('{"body": "eyJh", "properties": {"deli')
    (inbox / "00000000000000000002_junk.jobs.msg").write_bytes(b"\xff\xfe not json")
    (inbox / "00000000000000000003_badbody.jobs.msg").write_text(
        json.dumps({"body": "%%%not base64", "properties": {"body_encoding": "base64"}}))
    publish(tmp_path, ["good"])
    with caplog.at_level(logging.ERROR, logger="pds_platform.broker"), connect(tmp_path) as conn:
        queue = jobs(conn.default_channel)
        message = queue.get()
        assert message.payload == "good"
        message.ack()
        assert queue.get() is None
    assert files(tmp_path / "bad") == ["00000000000000000001_half.jobs.msg", "00000000000000000002_junk.jobs.msg",
                                       "00000000000000000003_badbody.jobs.msg"]
    assert caplog.text.count("undecodable message set aside") == 3


def _claim_and_die(folder: str) -> None:
    with connect(Path(folder)) as conn:
        message = jobs(conn.default_channel).get()
        assert message is not None
        os.kill(os.getpid(), signal.SIGKILL)  # no ack, no restore at shutdown


def test_messages_of_a_killed_consumer_are_delivered_again(tmp_path, caplog):
    publish(tmp_path, ["in flight", "waiting"])
    child = FORK.Process(target=_claim_and_die, args=(str(tmp_path),))
    child.start()
    child.join(10)
    assert child.exitcode == -signal.SIGKILL
    [dead] = (tmp_path / "processing").iterdir()
    assert dead.name.startswith(f"{child.pid}.") and dead.name.endswith(f"@{socket.gethostname()}")
    assert len(files(dead)) == 1  # the claimed message survived its consumer

    with caplog.at_level(logging.WARNING, logger="pds_platform.broker"), connect(tmp_path) as conn:
        queue = jobs(conn.default_channel)
        got = [queue.get(), queue.get()]
        assert [m.payload for m in got] == ["in flight", "waiting"]  # back at the head of the queue
        for m in got:
            m.ack()
    assert not dead.exists() and files(tmp_path / "processing") == []
    assert "1 unacknowledged message(s) of dead consumer" in caplog.text


def test_a_live_consumer_and_other_hosts_keep_their_messages(tmp_path):
    publish(tmp_path, [])
    processing = tmp_path / "processing"
    live = processing / owner_name(os.getppid())
    recycled = processing / f"{os.getppid()}.1@{socket.gethostname()}"  # same pid, another start time
    remote = processing / "1.1@another-host"
    for folder in (live, recycled, remote):
        folder.mkdir()
        (folder / f"00000000000000000001_{folder.name[:3]}.jobs.msg").write_text("{}")
    assert owner_alive(live.name) is True and owner_alive(recycled.name) is False
    assert owner_alive(remote.name) is None
    with connect(tmp_path) as conn:
        assert conn.default_channel.recover_dead_consumers() == 1
    assert files(live) and files(remote) and not recycled.exists()


def _bind(folder: str, prefix: str, start: float) -> None:
    while time.time() < start:
        pass
    with connect(Path(folder)) as conn:
        exchange = kombu.Exchange("shared", type="direct")
        for i in range(40):
            kombu.Queue(f"{prefix}{i}", exchange, routing_key=f"{prefix}{i}")(conn.default_channel).declare()
            assert conn.default_channel.get_table("shared")  # a publisher's read never sees a partial table


def test_exchange_tables_are_updated_by_several_processes_without_losing_a_binding(tmp_path):
    start = time.time() + 0.5
    binders = [FORK.Process(target=_bind, args=(str(tmp_path), p, start)) for p in ("a", "b", "c")]
    for b in binders:
        b.start()
    for b in binders:
        b.join(30)
        assert b.exitcode == 0
    with connect(tmp_path) as conn:
        table = conn.default_channel.get_table("shared")
    assert sorted(q.queue for q in table) == sorted(f"{p}{i}" for p in "abc" for i in range(40))
    assert (tmp_path / "control" / "shared.exchange").exists()


def test_queue_names_cannot_leave_the_broker_folder(tmp_path):
    with connect(tmp_path) as conn, pytest.raises(Exception, match="Invalid queue name"):
        conn.default_channel._put("../escape", {"properties": {}})
