"""Production settings as an operator runs them: collectstatic, check --deploy, pages with their assets.

With DJANGO_DEBUG=0 static files go through WhiteNoise's CompressedManifestStaticFilesStorage, which
rewrites every url()/sourceMappingURL to a hashed name and fails on a reference to a missing file; a
template then raises on any asset missing from the manifest, so every HTML page would be a 500. Each
test runs manage.py in a subprocess with the environment a deployment sets (no test settings).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT, production_env


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # No table is needed by what these tests do; an empty SQLite file keeps them off the shared server.
    return production_env(tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", **extra)


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp_path = tmp_path_factory.mktemp("production")
    env = _production_env(tmp_path)
    res = _manage(["collectstatic", "--noinput"], env)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp_path / "static", env


def test_collectstatic_hashes_and_compresses_every_asset(collected: tuple[Path, dict[str, str]]) -> None:
    static_root, _ = collected
    paths = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    # Our own assets, the vendored Chart.js, Django admin and the OpenAPI UI shipped by the sidecar package.
    for name in ("vendor/chartjs/chart.umd.min.js", "css/app.css", "admin/css/base.css",
                 "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                 "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"):
        assert name in paths, f"{name} missing from the manifest"
        hashed = static_root / paths[name]
        assert hashed.is_file() and hashed.name != Path(name).name
        assert hashed.with_name(hashed.name + ".gz").is_file(), f"{name} not pre-compressed"


def test_check_deploy_is_clean_with_postgres_and_redis(tmp_path: Path) -> None:
    env = _production_env(tmp_path, DATABASE_URL="postgres://pds:secret@127.0.0.1:5432/pds",
                          CELERY_BROKER_URL="redis://127.0.0.1:6379/0", REDIS_URL="redis://127.0.0.1:6379/0")
    res = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no issues" in res.stdout


@pytest.mark.parametrize("audit_key", [None, "too-short"])
def test_check_deploy_fails_loudly_without_the_audit_key(tmp_path: Path, audit_key: str | None) -> None:
    # Without it the trail's MACs would use the public development key: anyone could rewrite it unnoticed.
    env = _production_env(tmp_path)
    if audit_key is None:
        del env["PDS_AUDIT_KEY"]
    else:
        env["PDS_AUDIT_KEY"] = audit_key
    res = _manage(["check", "--deploy"], env)
    assert res.returncode != 0
    assert "PDS_AUDIT_KEY must be set (32+ characters) when DJANGO_DEBUG=0" in res.stderr


PAGE_AND_ASSETS = """
import re, django
django.setup()
from django.test import Client
c = Client(HTTP_HOST="pds.example.org")
page = c.get("/accounts/login/", secure=True)
print("PAGE", page.status_code)
for url in sorted(set(re.findall(r'(/static/[^"?#]+)', page.content.decode()))):
    res = c.get(url, secure=True, HTTP_ACCEPT_ENCODING="gzip")
    print("ASSET", res.status_code, res.get("Content-Encoding", "-"), url)
"""


def test_login_page_and_its_hashed_assets_are_served(collected: tuple[Path, dict[str, str]]) -> None:
    _, env = collected
    res = subprocess.run([sys.executable, "-c", PAGE_AND_ASSETS], cwd=ROOT, timeout=120, capture_output=True,
                         text=True, env={**env, "DJANGO_SETTINGS_MODULE": "pds_platform.settings"})
    assert res.returncode == 0, res.stderr
    assert "PAGE 200" in res.stdout, res.stdout + res.stderr
    assets = re.findall(r"^ASSET (\d+) (\S+) (\S+)$", res.stdout, re.M)
    assert assets, "the login page links no static asset"
    for status, encoding, url in assets:
        assert status == "200", url
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), f"{url} is not a hashed name"
        assert encoding == "gzip", f"{url} served uncompressed"


def test_vendored_files_reference_no_missing_source_map() -> None:
    # The failure collectstatic would hit, said early and by name (see static/vendor/chartjs/VERSION).
    for path in (ROOT / "static").rglob("*.js"):
        for ref in re.findall(r"sourceMappingURL=(\S+)", path.read_text(encoding="utf-8", errors="replace")):
            assert (path.parent / ref).is_file(), f"{path.relative_to(ROOT)} refers to missing {ref}"
