"""Finding 7 (issue 14): the audited address came from any client-supplied X-Forwarded-For (6.6.6.6 and
``not-an-ip<script>`` were stored); on PostgreSQL an invalid value made every audited request a 500 and a
failed login left no audit row. X-Forwarded-For now counts only from a trusted proxy, and only as an IP.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.core.net import client_ip

SPOOFED = "6.6.6.6"
GARBAGE = "not-an-ip<script>"


@pytest.mark.parametrize(("proxies", "remote", "forwarded", "expected"), [
    # No trusted proxy configured (the default): the header is never believed.
    ([], "203.0.113.7", SPOOFED, "203.0.113.7"),
    ([], "203.0.113.7", GARBAGE, "203.0.113.7"),
    # A peer that is not one of our proxies: its header is the client's own claim.
    (["10.0.0.0/8"], "203.0.113.7", SPOOFED, "203.0.113.7"),
    # From our proxy: the right-most address that is not ours; what the client prepended is ignored.
    (["10.0.0.0/8"], "10.0.0.2", "198.51.100.4", "198.51.100.4"),
    (["10.0.0.0/8"], "10.0.0.2", f"{SPOOFED}, 198.51.100.4", "198.51.100.4"),
    (["10.0.0.0/8"], "10.0.0.2", f"{SPOOFED}, 198.51.100.4, 10.0.0.9", "198.51.100.4"),
    (["10.0.0.0/8", "2001:db8:1::/48"], "2001:db8:1::1", "2001:DB8:2:0::5, 2001:db8:1::2", "2001:db8:2::5"),
    (["10.0.0.0/8"], "10.0.0.2", "2001:0db8::0001", "2001:db8::1"),
    # Not an IP address (markup, a port, an IPv6 zone, empty): the direct peer.
    (["10.0.0.0/8"], "10.0.0.2", GARBAGE, "10.0.0.2"),
    (["10.0.0.0/8"], "10.0.0.2", "198.51.100.4:5555", "10.0.0.2"),
    (["10.0.0.0/8"], "10.0.0.2", "fe80::1%eth0", "10.0.0.2"),
    (["10.0.0.0/8"], "10.0.0.2", "", "10.0.0.2"),
    # Only our proxies in the chain (the proxy's own health check): the left-most of them.
    (["10.0.0.0/8"], "10.0.0.2", "10.0.0.3", "10.0.0.3"),
    # A dual-stack socket's view of an IPv4 peer, and no usable peer at all.
    ([], "::ffff:192.0.2.1", "", "192.0.2.1"),
    ([], "", SPOOFED, None),
])
def test_client_ip(settings: Any, proxies: list[str], remote: str, forwarded: str, expected: str | None) -> None:
    settings.PDS_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_axes_keys_lockouts_on_the_same_address(settings: Any) -> None:
    from axes.helpers import get_client_ip_address

    settings.PDS_TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=SPOOFED)
    assert get_client_ip_address(request) == "203.0.113.7"


def _failed_login(client: Client, forwarded: str) -> AuditEntry:
    before = AuditEntry.objects.filter(action="login_failed").count()
    response = client.post(reverse("accounts:login"), {"username": "coordinateur", "password": "wrong"},
                           HTTP_X_FORWARDED_FOR=forwarded)
    assert response.status_code == 200  # the login form again, never a 500
    assert AuditEntry.objects.filter(action="login_failed").count() == before + 1
    return AuditEntry.objects.filter(action="login_failed").latest("id")


@pytest.mark.parametrize("forwarded", [SPOOFED, GARBAGE])
def test_spoofed_or_invalid_forwarded_for_is_not_audited(client: Client, demo: Any, forwarded: str) -> None:
    entry = _failed_login(client, forwarded)
    assert entry.ip == "127.0.0.1"  # the test client's own address


def test_forwarded_for_from_a_trusted_proxy_is_audited(client: Client, demo: Any, settings: Any) -> None:
    settings.PDS_TRUSTED_PROXIES = ["127.0.0.1/32"]
    assert _failed_login(client, f"{SPOOFED}, 198.51.100.4").ip == "198.51.100.4"
    # Garbage behind our proxy: the proxy's address, and the login is still audited.
    assert _failed_login(client, GARBAGE).ip == "127.0.0.1"


def test_audited_pages_survive_a_garbage_forwarded_for(client: Client, demo: Any) -> None:
    client.force_login(demo.users["coordinateur"])
    response = client.post(reverse("accounts:logout"), HTTP_X_FORWARDED_FOR=GARBAGE)
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="logout").latest("id").ip == "127.0.0.1"


def test_a_malformed_trusted_proxy_list_stops_the_platform() -> None:
    import os
    import subprocess
    import sys

    from tests.support.processes import ROOT

    env = {**os.environ, "PDS_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example.org"}
    res = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0 and "PDS_TRUSTED_PROXIES" in res.stderr
