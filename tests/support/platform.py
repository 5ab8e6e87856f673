"""Drive the whole platform from outside, as its users do: ``manage.py run_platform`` in its own process
group, a DICOM modality (dcmtk ``storescu``), people in a web browser (``requests`` sessions posting the
real forms with their CSRF tokens, and the second factor computed from the enrolment page's key) and a RIS
calling the API with a key issued by ``manage.py api_key_create``.

Nothing here reaches into the platform's database or imports its code: what a journey checks is what a
person or a client system would see.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from tests.support.processes import ROOT, free_port, wait_until

DEMO_PASSWORD = "pds-demo-2026"
GATEWAY_AET = "PDS_GATEWAY"
# Vierzon, the demo's requesting site the journeys send from (its FINESS and calling AE title).
VIERZON = next(e for e in json.loads((ROOT / "fixtures" / "demo_region.json").read_text(encoding="utf-8"))
               ["establishments"] if e["key"] == "vierzon")
# The parent's variables that configure the platform: a journey starts from none of them, like a fresh shell.
PLATFORM_ENV_PREFIXES = ("DJANGO_", "PDS_", "DATABASE_", "CELERY_", "REDIS_")


# --- Environments -----------------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_ENV_PREFIXES)}


def embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """``make run`` on a fresh clone: SQLite and the embedded broker under a temporary ``var/``."""
    return {**clean_env(), "PDS_VAR_DIR": str(tmp_path / "var"), "PDS_DICOM_PORT": str(free_port()),
            "PDS_DICOM_STORAGE_ROOT": str(tmp_path / "dicom"), "PDS_DICOM_QUIET_SECONDS": "1",
            "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1", **extra}


def production_env(tmp_path: Path, *, database_url: str, redis_url: str, cert: Path, key: Path,
                   **extra: str) -> dict[str, str]:
    """A production deployment: DEBUG off, PostgreSQL, Redis, HTTPS served by the platform itself."""
    return {**clean_env(), "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "PDS_AUDIT_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url, "REDIS_URL": redis_url, "PDS_LOAD_DEMO": "1",
            "PDS_WEB_TLS_CERT": str(cert), "PDS_WEB_TLS_KEY": str(key),
            "PDS_VAR_DIR": str(tmp_path / "var"), "PDS_DICOM_PORT": str(free_port()),
            "PDS_DICOM_STORAGE_ROOT": str(tmp_path / "dicom"), "PDS_DICOM_QUIET_SECONDS": "1",
            "PYTHONUNBUFFERED": "1", **extra}


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run one ``manage.py`` command as an operator would; its stdout, or a failure showing its output."""
    r = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"manage.py {' '.join(args)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


class Alongside:
    """A ``manage.py`` command running in the background; ``result()`` waits for it and gives its stdout."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...], timeout: float) -> None:
        self.args, self.timeout = args, timeout
        self.proc = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._out: str | None = None

    def result(self) -> str:
        if self._out is None:
            out, err = self.proc.communicate(timeout=self.timeout)
            assert self.proc.returncode == 0, (
                f"manage.py {' '.join(self.args)} exited {self.proc.returncode}:\n{out[-3000:]}\n{err[-3000:]}")
            self._out = out
        return self._out


@contextmanager
def manage_alongside(env: dict[str, str], *args: str, timeout: float = 300) -> Iterator[Alongside]:
    """Run a ``manage.py`` command while the block runs; it must have succeeded by the end of the block."""
    command = Alongside(env, args, timeout)
    try:
        yield command
        command.result()
    finally:
        if command.proc.poll() is None:
            command.proc.kill()
            command.proc.wait()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that the test's HTTP client trusts explicitly (``verify=<cert>``)."""
    cert, key = directory / "web-cert.pem", directory / "web-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@contextmanager
def postgres_database(server_url: str, name: str) -> Iterator[str]:
    """A fresh database ``name`` on the server of ``server_url`` (any database URL of it); dropped afterwards."""
    import psycopg

    parts = urlsplit(server_url)
    conninfo = dict(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                    user=parts.username or "postgres", password=parts.password or None, dbname="postgres",
                    autocommit=True)
    with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = parts.username or "postgres"
    if parts.password:
        auth += f":{parts.password}"
    try:
        yield f"postgres://{auth}@{conninfo['host']}:{conninfo['port']}/{name}"
    finally:
        with psycopg.connect(**conninfo) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_database(url: str) -> Iterator[str]:
    """The Redis database of ``url``, emptied before and after (no message of an earlier run is delivered)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- The running platform ---------------------------------------------------------------------------------


@dataclass
class Platform:
    base: str
    dicom_port: int
    env: dict[str, str]
    log: Path
    verify: str | bool = True
    production: bool = False
    checked_assets: set[str] = field(default_factory=set)
    totp_secrets: dict[str, str] = field(default_factory=dict)  # username -> key shown at enrolment
    totp_steps_used: dict[str, int] = field(default_factory=dict)  # a code is accepted once per 30 s step
    ready_offset: int = 0  # size of the log when /healthz first said 200

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def errors_logged_since_ready(self) -> list[str]:
        """ERROR lines and tracebacks written once the platform was up (before, /healthz answers 503 while
        the children start, which Django logs as an error of the request)."""
        with open(self.log, "rb") as f:
            f.seek(self.ready_offset)
            text = f.read().decode(errors="replace")
        return [line for line in text.splitlines() if " ERROR " in line or "ERROR/" in line or "Traceback" in line]

    def healthz(self) -> requests.Response:
        return requests.get(f"{self.base}/healthz", timeout=10, verify=self.verify)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def platform_running(env: dict[str, str], tmp_path: Path, *, ready_timeout: float = 120) -> Iterator[Platform]:
    """``manage.py run_platform`` in its own session; ready when ``/healthz`` is 200. Stopped with Ctrl-C
    (SIGINT), which must stop every child: a process of its group still alive 30 s later fails the test."""
    port = free_port()
    tls = bool(env.get("PDS_WEB_TLS_CERT"))
    platform = Platform(base=f"{'https' if tls else 'http'}://127.0.0.1:{port}", dicom_port=int(env["PDS_DICOM_PORT"]),
                        env=env, log=tmp_path / "platform.log", verify=env["PDS_WEB_TLS_CERT"] if tls else True,
                        production=env.get("DJANGO_DEBUG") == "0")
    log = open(platform.log, "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "run_platform", "--web-port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stopped_cleanly = True
    try:
        try:
            wait_until(lambda: proc.poll() is None and platform.healthz().status_code == 200, timeout=ready_timeout,
                       interval=1, message=f"{platform.base}/healthz 200")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; run_platform exit={proc.poll()}; log:\n{platform.log_tail()}") from None
        log.flush()
        platform.ready_offset = platform.log.stat().st_size
        try:
            yield platform
        except BaseException:
            print(f"--- run_platform log (tail) ---\n{platform.log_tail()}")  # shown by pytest on failure
            raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stopped_cleanly = False
        deadline = time.monotonic() + 30
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(proc.pid):
            stopped_cleanly = False
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
    assert stopped_cleanly, f"Ctrl-C did not stop every process of the platform; log:\n{platform.log_tail()}"


def healthz_all_ok(platform: Platform) -> dict[str, Any]:
    r = platform.healthz()
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok", body
    assert body["checks"] and all(v == "ok" for v in body["checks"].values()), body
    return body


# --- DICOM modality ---------------------------------------------------------------------------------------


def write_ct_study(directory: Path, *, accession: str, patient_id: str, patient_name: str, description: str,
                   slices: int = 4) -> list[Path]:
    """One CT series as a scanner would send it (pydicom writes the files; the platform never sees pydicom)."""
    from pydicom.uid import generate_uid

    from tests.factories.dicom import make_instance

    directory.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    files = []
    for n in range(1, slices + 1):
        ds = make_instance(study_uid=study_uid, series_uid=series_uid, number=n, rows=64, cols=64,
                           accession=accession, patient_id=patient_id, patient_name=patient_name,
                           description=description)
        path = directory / f"ct_{n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def storescu(port: int, files: list[Path], *, calling_ae: str, called_ae: str = GATEWAY_AET) -> str:
    """Send ``files`` with dcmtk; every C-STORE must be answered Success. Returns dcmtk's output."""
    r = subprocess.run(["storescu", "-v", "-nh", "-aet", calling_ae, "-aec", called_ae, "127.0.0.1", str(port),
                        *map(str, files)], capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert out.count("Received Store Response (Success)") == len(files), out[-3000:]
    return out


# --- Pages ------------------------------------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Form:
    action: str
    attrs: dict[str, str]
    fields: list[tuple[str, str]]  # what the browser submits when nothing is changed

    def data(self, **changes: str) -> dict[str, str]:
        data = dict(self.fields)
        data.update(changes)
        return data


class _PageParser(HTMLParser):
    """Forms with the values a browser would submit, assets, and the text of the elements a journey reads
    (those with an id, a data-case attribute or an alert/status role)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.links: list[Element] = []
        self.forms: list[Form] = []
        self.assets: list[str] = []
        self._open: list[tuple[Element, list[int]]] = []  # captured elements and their same-tag depth
        self._form: Form | None = None
        self._textarea: list[Any] | None = None
        self._select: dict[str, Any] | None = None
        self._option: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        for el, depth in self._open:
            if el.tag == tag and tag not in self.VOID:
                depth[0] += 1
        if tag == "link" and attrs.get("href", "").startswith("/static/"):
            self.assets.append(attrs["href"])
        if tag in ("script", "img") and attrs.get("src", "").startswith("/static/"):
            self.assets.append(attrs["src"])
        el = Element(tag, attrs)
        if tag == "a":
            self.links.append(el)
        if "id" in attrs or "data-case" in attrs or attrs.get("role") in ("alert", "status") or tag == "a":
            self.elements.append(el)
            if tag not in self.VOID:
                self._open.append((el, [1]))
        if tag == "form":
            self._form = Form(action=attrs.get("action", ""), attrs=attrs, fields=[])
            self.forms.append(self._form)
        elif self._form is not None:
            self._form_field(tag, attrs)

    def _form_field(self, tag: str, attrs: dict[str, str]) -> None:
        assert self._form is not None
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._form.fields.append((name, attrs.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "textarea" and name:
            self._textarea = [name, ""]
        elif tag == "select" and name:
            self._select = {"name": name, "first": None, "selected": None}
        elif tag == "option" and self._select is not None:
            self._option = {"value": attrs.get("value"), "text": "", "selected": "selected" in attrs}

    def handle_endtag(self, tag: str) -> None:
        for el, depth in list(self._open):
            if el.tag == tag:
                depth[0] -= 1
                if depth[0] == 0:
                    el.text = " ".join(el.text.split())
                    self._open.remove((el, depth))
        if tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields.append((self._textarea[0], self._textarea[1]))
            self._textarea = None
        elif tag == "option" and self._option is not None and self._select is not None:
            value = self._option["value"] if self._option["value"] is not None else self._option["text"].strip()
            if self._select["first"] is None:
                self._select["first"] = value
            if self._option["selected"]:
                self._select["selected"] = value
            self._option = None
        elif tag == "select" and self._select is not None and self._form is not None:
            value = self._select["selected"] if self._select["selected"] is not None else self._select["first"]
            if value is not None:
                self._form.fields.append((self._select["name"], value))
            self._select = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        for el, _ in self._open:
            el.text += data
        if self._textarea is not None:
            self._textarea[1] += data
        if self._option is not None:
            self._option["text"] += data


@dataclass
class Page:
    url: str
    status: int
    html: str
    elements: list[Element]
    links: list[Element]
    forms: list[Form]
    assets: list[str]

    @classmethod
    def parse(cls, response: requests.Response) -> Page:
        parser = _PageParser()
        parser.feed(response.text)
        parser.close()
        return cls(url=response.url, status=response.status_code, html=response.text, elements=parser.elements,
                   links=parser.links, forms=parser.forms, assets=parser.assets)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def find(self, element_id: str) -> Element | None:
        return next((e for e in self.elements if e.attrs.get("id") == element_id), None)

    def get(self, element_id: str) -> Element:
        el = self.find(element_id)
        assert el is not None, f"no #{element_id} on {self.url}:\n{self.html[-3000:]}"
        return el

    def form(self, *, action_endswith: str | None = None, form_id: str | None = None,
             with_field: str | None = None) -> Form:
        for f in self.forms:
            if action_endswith is not None and not f.action.endswith(action_endswith):
                continue
            if form_id is not None and f.attrs.get("id") != form_id:
                continue
            if with_field is not None and with_field not in dict(f.fields):
                continue
            return f
        raise AssertionError(f"no such form ({action_endswith or form_id or with_field}) on {self.url}")

    def has_form(self, action_endswith: str) -> bool:
        return any(f.action.endswith(action_endswith) for f in self.forms)

    def errors(self) -> list[str]:
        """Error messages shown to the user (the message list and form errors)."""
        return [e.text for e in self.elements if "error" in e.attrs.get("class", "").split()]

    def rows(self) -> list[Element]:
        return [e for e in self.elements if e.tag == "tr" and "data-case" in e.attrs]


# --- A person in a web browser ----------------------------------------------------------------------------


def totp(secret_b32: str, at: float | None = None, *, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 (HMAC-SHA1, 30 s, 6 digits: what an authenticator app computes from the enrolment key)."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), "sha1").digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10 ** digits
    return f"{code:0{digits}d}"


CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


class Browser:
    """One person's browser: cookies, CSRF tokens from the forms, Referer/Origin on posts (Django checks them
    over HTTPS), and every /static/ asset of every page visited fetched once."""

    def __init__(self, platform: Platform, username: str, *, language: str = "en") -> None:
        self.platform = platform
        self.username = username
        self.session = requests.Session()  # verify= on each call: REQUESTS_CA_BUNDLE would override the session's
        self.session.headers.update({"Accept-Language": language, "User-Agent": "pds-journey-test"})
        self.second_factor: str = ""  # "", "enrolled" or "verified": what the last login went through

    def url(self, path: str) -> str:
        return urljoin(self.platform.base + "/", path)

    def _page(self, response: requests.Response, expect: int = 200) -> Page:
        assert response.status_code == expect, (
            f"{response.request.method} {response.url} -> {response.status_code}\n{response.text[-3000:]}")
        page = Page.parse(response)
        if "text/html" in response.headers.get("Content-Type", ""):
            self.check_assets(page)
        return page

    def get(self, path: str, expect: int = 200) -> Page:
        return self._page(self.session.get(self.url(path), timeout=30, verify=self.platform.verify), expect)

    def download(self, path: str, content_type: str) -> bytes:
        r = self.session.get(self.url(path), timeout=60, verify=self.platform.verify)
        assert r.status_code == 200, f"GET {r.url} -> {r.status_code}\n{r.text[-2000:]}"
        assert r.headers.get("Content-Type", "").startswith(content_type), r.headers
        return r.content

    def submit(self, page: Page, form: Form, expect: int = 200, **changes: str) -> Page:
        target = urljoin(page.url, form.action) if form.action else page.url
        r = self.session.post(target, data=form.data(**changes), timeout=60, verify=self.platform.verify,
                              headers={"Referer": page.url, "Origin": self.platform.base})
        result = self._page(r, expect)
        assert not result.errors(), f"POST {target}: {result.errors()}"
        return result

    def check_assets(self, page: Page) -> None:
        """Each stylesheet, script and image of the page (and what the stylesheets load) answers 200."""
        pending = [urljoin(page.url, a) for a in page.assets]
        while pending:
            url = pending.pop()
            if url in self.platform.checked_assets:
                continue
            r = self.session.get(url, timeout=30, verify=self.platform.verify)
            assert r.status_code == 200 and r.content, f"static asset {url} of {page.url} -> {r.status_code}"
            if self.platform.production:
                # The manifest storage serves content-hashed names that browsers may cache forever.
                assert re.search(r"\.[0-9a-f]{12}\.\w+$", urlsplit(url).path), f"{url} is not a hashed name"
            self.platform.checked_assets.add(url)
            if urlsplit(url).path.endswith(".css"):
                for ref in CSS_URL.findall(r.text):
                    if not ref.startswith(("data:", "#", "http:", "https:")):
                        pending.append(urljoin(url, ref))

    def login(self, password: str = DEMO_PASSWORD) -> Page:
        """The login form, then the second factor if the platform asks for it: enrolment (the key shown on
        the page is kept, as an authenticator app keeps it) or a code from the key enrolled earlier."""
        page = self.get("/accounts/login/")
        page = self.submit(page, page.form(with_field="username"), username=self.username, password=password)
        self.second_factor = ""
        if page.path.endswith("/accounts/login/setup/"):
            self.platform.totp_secrets[self.username] = page.get("totp-secret").text.replace(" ", "")
            page = self.submit(page, page.form(with_field="token"), token=self._fresh_code())
            self.second_factor = "enrolled"
        elif page.path.endswith("/accounts/login/verify/"):
            page = self.submit(page, page.form(with_field="token"), token=self._fresh_code())
            self.second_factor = "verified"
        assert "/accounts/login" not in page.path, f"{self.username} not logged in: {page.errors()}"
        return page

    def _fresh_code(self) -> str:
        """A code of a time step not used yet by this account (the server refuses a replayed code)."""
        secret = self.platform.totp_secrets[self.username]
        while int(time.time() // 30) <= self.platform.totp_steps_used.get(self.username, -1):
            time.sleep(0.5)
        now = time.time()
        self.platform.totp_steps_used[self.username] = int(now // 30)
        return totp(secret, now)


# --- A RIS calling the API --------------------------------------------------------------------------------


class ApiClient:
    def __init__(self, platform: Platform, key: str) -> None:
        self.platform = platform
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def _get(self, path: str, **params: Any) -> requests.Response:
        r = self.session.get(urljoin(self.platform.base + "/", path), params=params, timeout=60,
                             verify=self.platform.verify)
        assert r.status_code == 200, f"GET {r.url} -> {r.status_code}\n{r.text[-2000:]}"
        return r

    def get(self, path: str, **params: Any) -> Any:
        return self._get(path, **params).json()

    def download(self, path: str, content_type: str) -> bytes:
        r = self._get(path)
        assert r.headers.get("Content-Type", "").startswith(content_type), r.headers
        return r.content
