"""Webhook SSRF controls (issue 14, finding 4): an integration key must not turn the delivery worker into a
proxy into the hosting network or a port scanner, and patient data must not leave over plain HTTP.

Real receivers listen on 127.0.0.1 (plain HTTP and TLS with a test CA made by openssl). Host names under
``.ssrf.test`` resolve to what each test says through a stand-in for the system resolver, so that
"a name that resolves to a private address" is tested without any other network. A guard refuses, and
fails the test on, any connection to a non-loopback address: a refused target is never contacted."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apps.api.egress import EgressPolicy, address_refusal, url_refusal
from apps.api.models import WebhookDelivery
from apps.api.services import DELIVERY_FAILED, webhook_deliveries_drive
from apps.worklist.models import Case
from tests.api.conftest import request_create
from tests.api.receiver import Receiver
from tests.support.processes import free_port

STRICT, LENIENT = EgressPolicy(), EgressPolicy(allow_http=True, allow_private=True)


# --- The address policy, as a table ------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "strict", "lenient"), [
    ("93.184.216.34", None, None),
    ("2606:4700::1111", None, None),
    ("127.0.0.1", "loopback address", None),
    ("127.8.9.10", "loopback address", None),
    ("::1", "loopback address", None),
    ("10.0.0.5", "private address", None),
    ("172.16.3.4", "private address", None),
    ("192.168.1.1", "private address", None),
    ("100.64.0.1", "private address", None),  # carrier-grade NAT
    ("fd12:3456::1", "private address", None),
    ("169.254.169.254", "cloud metadata address", "cloud metadata address"),
    ("169.254.170.2", "cloud metadata address", "cloud metadata address"),
    ("100.100.100.200", "cloud metadata address", "cloud metadata address"),
    ("168.63.129.16", "cloud metadata address", "cloud metadata address"),
    ("fd00:ec2::254", "cloud metadata address", "cloud metadata address"),
    ("169.254.1.1", "link-local address", "link-local address"),
    ("fe80::1", "link-local address", "link-local address"),
    ("0.0.0.0", "unspecified address", "unspecified address"),
    ("::", "unspecified address", "unspecified address"),
    ("0.1.2.3", "unspecified address", "unspecified address"),
    ("224.0.0.1", "multicast address", "multicast address"),
    ("239.255.255.250", "multicast address", "multicast address"),
    ("ff02::1", "multicast address", "multicast address"),
    ("240.0.0.1", "reserved address", "reserved address"),
    ("255.255.255.255", "reserved address", "reserved address"),
    ("::ffff:127.0.0.1", "loopback address (embedded in ::ffff:7f00:1)", None),
    ("::ffff:169.254.169.254", "cloud metadata address (embedded in ::ffff:a9fe:a9fe)",
     "cloud metadata address (embedded in ::ffff:a9fe:a9fe)"),
    ("64:ff9b::a00:1", "private address (embedded in 64:ff9b::a00:1)", None),  # NAT64 of 10.0.0.1
    ("2002:7f00:1::", "loopback address (embedded in 2002:7f00:1::)", None),  # 6to4 of 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnel address", "Teredo tunnel address"),
    ("192.0.2.7", "private address", None),  # documentation range: no real receiver there
])
def test_address_policy(address: str, strict: str | None, lenient: str | None) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, STRICT) == strict
    assert address_refusal(ip, LENIENT) == lenient


@pytest.mark.parametrize(("url", "refused_by_default", "refused_when_allowed"), [
    ("https://ris.example.org/pds", False, False),
    ("https://93.184.216.34:8443/hook?x=1", False, False),
    ("http://ris.example.org/pds", True, False),
    ("ftp://ris.example.org/pds", True, True),
    ("https://user:secret@ris.example.org/pds", True, True),
    ("https://127.0.0.1:5432/", True, False),
    ("https://[::1]:6379/", True, False),
    ("https://localhost:6379/", True, False),
    ("https://db.localhost/", True, False),
    ("https://10.1.2.3/", True, False),
    ("https://[::ffff:10.1.2.3]/", True, False),
    ("https://169.254.169.254/latest/meta-data/", True, True),
    ("https://[fd00:ec2::254]/latest/meta-data/", True, True),
    ("https://metadata.google.internal/computeMetadata/v1/", True, True),
    ("https://0.0.0.0/", True, True),
    ("https:///nohost", True, True),
])
def test_url_policy(url: str, refused_by_default: bool, refused_when_allowed: bool) -> None:
    assert (url_refusal(url, STRICT) is not None) == refused_by_default
    assert (url_refusal(url, LENIENT) is not None) == refused_when_allowed


# --- Fixtures: no traffic beyond loopback, names that resolve to what the test says ----------------------

@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuses (and fails the test on) any TCP connection to an address that is not loopback."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
            attempts.append(address)
            raise ConnectionRefusedError(f"test guard: no traffic to {address[0]}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], f"connections attempted beyond loopback: {attempts}"


@dataclass
class FakeDns:
    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def set(self, name: str, *answers: list[str]) -> None:
        """Successive lookups of ``name`` get the successive answers (the last one repeats)."""
        self.answers[name] = list(answers)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake, real_getaddrinfo = FakeDns(), socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not (isinstance(host, str) and host.endswith(".ssrf.test")):
            return real_getaddrinfo(host, port, *args, **kwargs)
        fake.lookups.append(host)
        queue = fake.answers.get(host)
        if not queue:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port), 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in answer]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        r = Receiver(free_port(), **kwargs)
        r.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def allow(settings: Any, *, http: bool = True, private: bool = True) -> None:
    settings.PDS_WEBHOOK_ALLOW_HTTP, settings.PDS_WEBHOOK_ALLOW_PRIVATE = http, private


def subscribe(world: Any, url: str) -> int:
    resp = world.client("a_rw").post("/api/v1/webhooks/", {"url": url, "events": ["request.created"]},
                                     format="json")
    assert resp.status_code == 201, resp.content
    return int(resp.json()["id"])


def deliver_new_request(world: Any, *subscription_ids: int) -> list[WebhookDelivery]:
    """A new request (announced to every subscription of the establishment), delivered to these ones."""
    case = Case.objects.get(public_id=request_create(world)["id"])
    for sub_id in subscription_ids:
        webhook_deliveries_drive(subscription_id=sub_id, case_id=case.pk)
    return [WebhookDelivery.objects.get(subscription_id=sub_id, case=case) for sub_id in subscription_ids]


# --- Registration ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://ris.example.org/pds",
    "https://127.0.0.1:5432/",
    "https://localhost:6379/",
    "https://[::1]/",
    "https://10.0.0.5/hook",
    "https://192.168.1.20/hook",
    "https://[fd12::5]/hook",
    "https://[::ffff:127.0.0.1]/",
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://100.100.100.200/latest/meta-data/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://integrator:pa55@ris.example.org/pds",
])
def test_registration_refuses_plain_http_local_and_metadata_targets(world: Any, url: str) -> None:
    resp = world.client("a_rw").post("/api/v1/webhooks/", {"url": url, "events": ["request.created"]},
                                     format="json")
    assert resp.status_code == 400, resp.content
    assert resp["Content-Type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["status"] == 400 and set(problem["errors"]) == {"url"}
    assert "cannot receive webhooks" in problem["detail"] or "https://" in problem["detail"]
    assert not world.client("a_rw").get("/api/v1/webhooks/").json()["count"]


def test_registration_says_why_http_is_refused(world: Any) -> None:
    resp = world.client("a_rw").post("/api/v1/webhooks/", {"url": "http://ris.example.org/pds",
                                                           "events": ["request.created"]}, format="json")
    assert resp.json()["errors"]["url"] == [
        "Use an https:// URL: deliveries carry patient data and are only sent over TLS."]


def test_registration_of_http_and_loopback_only_when_the_settings_allow_it(world: Any, settings: Any) -> None:
    allow(settings, http=True, private=False)
    subscribe(world, "http://ris.example.org/pds")
    assert world.client("a_rw").post("/api/v1/webhooks/", {"url": "http://127.0.0.1:8080/",
                                                           "events": ["request.created"]},
                                     format="json").status_code == 400
    allow(settings, http=False, private=True)
    subscribe(world, "https://127.0.0.1:8443/")
    # Metadata is never a target, whatever the settings.
    allow(settings)
    assert world.client("a_rw").post("/api/v1/webhooks/", {"url": "http://169.254.169.254/",
                                                           "events": ["request.created"]},
                                     format="json").status_code == 400


# --- Delivery -------------------------------------------------------------------------------------------

def test_a_real_receiver_on_loopback_is_refused_unless_the_setting_allows_it(
        world: Any, settings: Any, receivers: Callable[..., Receiver], caplog: pytest.LogCaptureFixture) -> None:
    receiver = receivers()
    allow(settings)
    sub_id = subscribe(world, receiver.url)  # registered while allowed, e.g. before an upgrade

    allow(settings, http=False, private=False)
    with caplog.at_level(logging.WARNING, logger="apps.api.services"):
        (refused,) = deliver_new_request(world, sub_id)
    assert receiver.received == []
    assert refused.status == "pending" and refused.last_status_code is None and refused.last_error == DELIVERY_FAILED
    assert "refused by policy" in caplog.text and "https://" in caplog.text  # the reason, for the operator only

    allow(settings, http=True, private=False)  # plain HTTP allowed is not enough: the address is loopback
    caplog.clear()
    WebhookDelivery.objects.filter(pk=refused.pk).update(next_attempt_at=refused.created_at)
    with caplog.at_level(logging.WARNING, logger="apps.api.services"):
        webhook_deliveries_drive(subscription_id=sub_id, case_id=refused.case_id)
    assert receiver.received == [] and "loopback address" in caplog.text

    allow(settings)
    WebhookDelivery.objects.filter(pk=refused.pk).update(next_attempt_at=refused.created_at)
    assert webhook_deliveries_drive(subscription_id=sub_id, case_id=refused.case_id) == "done"
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get(pk=refused.pk).status == "delivered"


@pytest.mark.parametrize(("answer", "reason"), [
    (["10.20.30.40"], "private address"),
    (["127.0.0.1"], "loopback address"),
    (["::1"], "loopback address"),
    (["169.254.169.254"], "cloud metadata address"),
    (["fd00:ec2::254"], "cloud metadata address"),
    (["::ffff:192.168.0.1"], "private address"),
    (["93.184.216.34", "10.0.0.7"], "private address"),  # one bad address is enough, whatever the order
])
def test_a_name_resolving_to_a_forbidden_address_is_refused_at_delivery(
        world: Any, dns: FakeDns, caplog: pytest.LogCaptureFixture, answer: list[str], reason: str) -> None:
    dns.set("internal.ssrf.test", answer)
    sub_id = subscribe(world, "https://internal.ssrf.test/hook")  # nothing to see in the URL itself
    with caplog.at_level(logging.WARNING, logger="apps.api.services"):
        (delivery,) = deliver_new_request(world, sub_id)
    assert dns.lookups == ["internal.ssrf.test"]
    assert delivery.last_error == DELIVERY_FAILED and delivery.last_status_code is None
    assert reason in caplog.text  # nothing was connected to: the loopback_only guard checks it


def test_the_vetted_address_is_the_one_connected_to_no_second_lookup(
        world: Any, settings: Any, dns: FakeDns, receivers: Callable[..., Receiver]) -> None:
    """DNS rebinding: the name resolves to an allowed address for the check, then to the metadata service.
    The request must go to the address that was checked, with the name in the Host header."""
    allow(settings)
    receiver = receivers(host="rebind.ssrf.test")
    dns.set("rebind.ssrf.test", ["127.0.0.1"], ["169.254.169.254"])
    sub_id = subscribe(world, receiver.url)
    (delivery,) = deliver_new_request(world, sub_id)
    assert delivery.status == "delivered", delivery.last_error
    assert dns.lookups == ["rebind.ssrf.test"]
    assert receiver.received[0]["headers"]["host"] == f"rebind.ssrf.test:{receiver.port}"
    assert receiver.received[0]["path"] == "/hooks/pds"


def test_redirects_are_not_followed(world: Any, settings: Any, receivers: Callable[..., Receiver]) -> None:
    allow(settings)
    target = receivers()
    redirecting = receivers(status=307, headers={"Location": target.url})
    to_metadata = receivers(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    moved, metadata = deliver_new_request(world, subscribe(world, redirecting.url), subscribe(world, to_metadata.url))
    assert len(redirecting.received) == 1 and target.received == []
    assert (moved.last_status_code, moved.last_error, moved.status) == (307, "HTTP 307", "pending")
    assert (metadata.last_status_code, metadata.last_error) == (302, "HTTP 302")


def _tcp_service(reply: bytes) -> tuple[int, Callable[[], None]]:
    """A loopback TCP service that is not HTTP (as Redis or PostgreSQL would be): replies and closes."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        stop.set()
        server.close()

    return int(server.getsockname()[1]), close


def test_deliveries_error_is_the_same_for_a_closed_port_an_open_one_and_a_refused_target(
        world: Any, settings: Any, dns: FakeDns, receivers: Callable[..., Receiver],
        caplog: pytest.LogCaptureFixture) -> None:
    """The finding: /deliveries/ answered a per-target socket error, a port scanner. Now every target that
    gave no HTTP answer reads the same; the reasons are in the server log only."""
    redis_like_port, close = _tcp_service(b"-ERR unknown command 'POST'\r\n")
    live = receivers()
    try:
        allow(settings)
        closed_sub = subscribe(world, f"http://127.0.0.1:{free_port()}/")
        open_sub = subscribe(world, f"http://127.0.0.1:{redis_like_port}/")
        loopback_sub = subscribe(world, live.url)
        dns.set("metadata.ssrf.test", ["169.254.169.254"])
        dns.set("unknown.ssrf.test")  # does not resolve
        metadata_sub = subscribe(world, "https://metadata.ssrf.test/latest/meta-data/")
        unknown_sub = subscribe(world, "https://unknown.ssrf.test/")
        case = Case.objects.get(public_id=request_create(world)["id"])
        with caplog.at_level(logging.WARNING, logger="apps.api.services"):
            for sub_id in (closed_sub, open_sub):  # allowed targets: actually tried
                webhook_deliveries_drive(subscription_id=sub_id, case_id=case.pk)
            allow(settings, http=False, private=False)
            for sub_id in (loopback_sub, metadata_sub, unknown_sub):
                webhook_deliveries_drive(subscription_id=sub_id, case_id=case.pk)
    finally:
        close()
    assert live.received == []
    shown = []
    for sub_id in (closed_sub, open_sub, loopback_sub, metadata_sub, unknown_sub):
        (listed,) = world.client("a_rw").get(f"/api/v1/webhooks/{sub_id}/deliveries/").json()
        shown.append({k: listed[k] for k in ("status", "attempts", "last_status_code", "last_error")})
    assert shown == [{"status": "pending", "attempts": 1, "last_status_code": None,
                      "last_error": DELIVERY_FAILED}] * 5
    # The operator still learns what happened, from the log.
    for detail in ("Connection refused", "BadStatusLine", "refused by policy", "cloud metadata address",
                   "cannot resolve"):
        assert detail in caplog.text, detail


# --- HTTPS: the certificate is checked against the URL's name, not the pinned address -----------------------

def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and a server certificate for ris.ssrf.test, signed by it."""
    d = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=PDS test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=ris.ssrf.test", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:ris.ssrf.test\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                               "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


def _server_context(tls_files: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "server.pem", tls_files / "server.key")
    return context


def test_https_goes_to_the_vetted_address_with_the_url_name_for_sni_and_certificate(
        world: Any, settings: Any, dns: FakeDns, receivers: Callable[..., Receiver], tls_files: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    allow(settings, http=False, private=True)
    settings.PDS_WEBHOOK_CA_BUNDLE = str(tls_files / "ca.pem")
    dns.set("ris.ssrf.test", ["127.0.0.1"])
    dns.set("other.ssrf.test", ["127.0.0.1"])
    receiver = receivers(host="ris.ssrf.test", tls=_server_context(tls_files))
    good = subscribe(world, receiver.url)
    wrong_name = subscribe(world, f"https://other.ssrf.test:{receiver.port}/hooks/pds")
    with caplog.at_level(logging.WARNING, logger="apps.api.services"):
        delivered, mismatched = deliver_new_request(world, good, wrong_name)
    assert delivered.status == "delivered", caplog.text
    assert len(receiver.received) == 1
    assert receiver.received[0]["headers"]["host"] == f"ris.ssrf.test:{receiver.port}"
    assert "ris.ssrf.test" in receiver.server_names
    # The certificate names ris.ssrf.test: reaching the same address under another name must fail.
    assert mismatched.last_error == DELIVERY_FAILED
    assert "hostname 'other.ssrf.test' doesn't match 'ris.ssrf.test'" in caplog.text


def test_https_receiver_with_an_untrusted_certificate_fails(
        world: Any, settings: Any, dns: FakeDns, receivers: Callable[..., Receiver], tls_files: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    allow(settings, http=False, private=True)  # the default CA bundle: the test CA is not in it
    dns.set("ris.ssrf.test", ["127.0.0.1"])
    receiver = receivers(host="ris.ssrf.test", tls=_server_context(tls_files))
    with caplog.at_level(logging.WARNING, logger="apps.api.services"):
        (delivery,) = deliver_new_request(world, subscribe(world, receiver.url))
    assert delivery.last_error == DELIVERY_FAILED and receiver.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
