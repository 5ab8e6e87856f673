"""Content-Security-Policy on every page, no inline script or style in our templates (issue 14, finding 10)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def _policy(resp: Any) -> dict[str, list[str]]:
    header = resp["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


@pytest.mark.django_db
def test_pages_carry_a_strict_policy(demo: Any) -> None:
    anonymous = Client()
    c = Client()
    c.force_login(demo.users["coordinateur"])
    for client, path in ((anonymous, "/accounts/login/"), (c, "/dashboard/"), (c, "/admin/"),
                         (c, "/rosters/coverage/")):
        resp = client.get(path)
        assert resp.status_code == 200, path
        policy = _policy(resp)
        assert policy["default-src"] == ["'self'"], path
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path


def test_templates_have_no_inline_script_style_or_handler() -> None:
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for what, rx in (("inline <script>", inline_script), ("on*= handler", handler),
                         ("style attribute", re.compile(r"\sstyle\s*=", re.I)), ("<style>", re.compile(r"<style", re.I)),
                         ("javascript: URL", re.compile(r"javascript:", re.I))):
            if rx.search(text):
                offenders.append(f"{path.relative_to(TEMPLATES)}: {what}")
    assert offenders == []


@pytest.mark.django_db
def test_swagger_ui_gets_exactly_its_own_inline_script(demo: Any) -> None:
    c = Client()
    c.force_login(demo.users["coordinateur"])
    resp = c.get("/api/docs/")
    assert resp.status_code == 200
    policy = _policy(resp)
    bodies = re.findall(rb"<script>(.*?)</script>", resp.content, re.S)
    assert len(bodies) == 1
    digest = base64.b64encode(hashlib.sha256(bodies[0]).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    redoc = _policy(c.get("/api/redoc/"))
    assert redoc["script-src"] == ["'self'"] and redoc["worker-src"] == ["'self'", "blob:"]
    # The relaxation is for those two pages only.
    assert _policy(c.get("/dashboard/"))["style-src"] == ["'self'"]
