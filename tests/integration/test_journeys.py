"""The whole job, driven from outside as people and machines do it, on both ways the platform is run.

* Embedded (``make run`` on a fresh clone): SQLite and the embedded broker in a temporary ``var/``.
* Production: ``DJANGO_DEBUG=0`` on a fresh PostgreSQL database and a flushed Redis database, static files
  collected, the web app behind the production server over HTTPS, logins through the second factor.

One journey for both: a CT study sent by dcmtk ``storescu`` from Vierzon's scanner; the case offered to the
radiologist on duty; acknowledged, claimed, read in the viewer, reported and signed through the web forms; the
signed report read by the emergency physician (page and PDF) and fetched by Vierzon's RIS through the API.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.platform import (
    VIERZON,
    ApiClient,
    Browser,
    Page,
    Platform,
    embedded_env,
    healthz_all_ok,
    manage,
    manage_alongside,
    platform_running,
    postgres_database,
    production_env,
    redis_database,
    self_signed_cert,
    storescu,
    write_ct_study,
)
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("storescu"), reason="Debian dcmtk is required")]



def test_embedded_journey(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    manage(env, "prepare_platform")  # `make run`: migrations and the demo region (loaded by default in debug)
    with ris_key_issued(env) as issuing, platform_running(env, tmp_path) as platform:
        journey(platform, tmp_path, ris_key=issuing.result())


def test_production_journey(tmp_path: Path) -> None:
    server = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("PDS_JOURNEY_REDIS_URL") or os.environ.get("REDIS_URL", "")
    if not server.startswith(("postgres://", "postgresql://")) or not redis_url.startswith("redis"):
        pytest.skip("needs this machine's PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    cert, key = self_signed_cert(tmp_path)
    name = f"pds_journey_{secrets.token_hex(4)}"
    with postgres_database(server, name) as database_url, redis_database(redis_url):
        env = production_env(tmp_path, database_url=database_url, redis_url=redis_url, cert=cert, key=key)
        # As the Docker image is deployed: static files collected when the image is built (here alongside),
        # then the database prepared at start, with the demo region because PDS_LOAD_DEMO=1.
        with manage_alongside(env, "collectstatic", "--noinput", "-v0"):
            out = manage(env, "prepare_platform", "--skip-collectstatic")
        assert "Demo region" in out and "ready" in out, out
        with ris_key_issued(env) as issuing, platform_running(env, tmp_path) as platform:
            assert platform.base.startswith("https://")
            journey(platform, tmp_path, ris_key=issuing.result())


def ris_key_issued(env: dict[str, str]) -> Any:
    """Vierzon's RIS is given its API key by the administrator on the command line (while the platform starts)."""
    return manage_alongside(env, "api_key_create", "--finess", VIERZON["finess"], "--name", "RIS Vierzon")


def journey(platform: Platform, tmp_path: Path, *, ris_key: str) -> None:
    healthz_all_ok(platform)
    tag = secrets.token_hex(4).upper()
    accession, exam, conclusion = f"JRN-{tag}", f"Scanner cérébral {tag}", f"Pas d'hématome intracrânien ({tag})."
    ris = ApiClient(platform, ris_key.strip())
    site_id = next(e["id"] for e in ris.get("/api/v1/establishments/")["results"] if e["finess"] == VIERZON["finess"])

    # 1. Vierzon's scanner sends a head CT without a prior request.
    files = write_ct_study(tmp_path / "study", accession=accession, patient_id=f"IPP-{tag}",
                           patient_name=f"JOURNEY^{tag}", description=exam)
    storescu(platform.dicom_port, files, calling_ae=VIERZON["ae"])

    # 2. The radiologist on duty finds it offered to them on their worklist.
    radio = Browser(platform, "radiologue")
    home = radio.login()
    assert radio.second_factor == ("enrolled" if platform.production else "")
    assert home.path == "/worklist/"
    if platform.production:
        assert all(c.secure for c in radio.session.cookies), "production cookies travel over HTTPS only"
    case_path = wait_until(lambda: offered_case(radio, exam), timeout=90, interval=1,
                           message="the case offered to the radiologist on duty")
    public_id = case_path.rstrip("/").rsplit("/", 1)[-1]
    request = only(ris.get("/api/v1/requests/", accession_number=accession))
    assert request["id"] == public_id and request["origin"] == "dicom"
    assert request["assignment"]["state"] == "offered"
    on_duty = ris.get("/api/v1/on-call/", site=site_id, modality="CT")["on_duty"]
    assert on_duty and on_duty[0]["name"] == request["assignment"]["radiologist"], (on_duty, request)
    if platform.production:  # the worklist showed it: a worker prepared its DICOM JSON for the viewer (Redis)
        wait_until(lambda: metadata_prepared(platform) == len(files), timeout=60, interval=0.5,
                   message="the study's metadata prepared for the viewer")

    # 3. The emergency physician sees the request and whom to call.
    physician = Browser(platform, "urgentiste")
    assert physician.login().path == "/worklist/site/"
    assert physician.second_factor == ("enrolled" if platform.production else "")
    site = physician.get("/worklist/site/")
    assert any(link.attrs.get("href") == case_path for link in site.links), "the case is on the site's list"
    status = physician.get(case_path)
    assert status.get("case-status").attrs["data-status"] == "awaiting_reading"
    assert on_duty[0]["name"] in html.unescape(status.html)

    # 4. The radiologist acknowledges, claims, looks at the images, reports and signs.
    case = radio.get(case_path)
    case = radio.submit(case, case.form(action_endswith="/do/acknowledge"))
    assert not case.has_form("/do/acknowledge")
    case = radio.submit(case, case.form(action_endswith="/do/claim"))
    assert case.get("case-status").attrs["data-status"] == "in_progress" and case.find("report-form")
    look_at_images(radio, case_path, expected=len(files))
    case = radio.get(case_path)
    case = radio.submit(case, case.form(form_id="report-form"), findings="Pas d'anomalie de densité.",
                        conclusion=conclusion)
    assert case.get("case-status").attrs["data-status"] == "reported"
    assert case.get("report-conclusion").text == conclusion

    # 5. The physician reads the signed report on the status page and downloads the PDF.
    status = physician.get(case_path)
    assert status.get("case-status").attrs["data-status"] == "reported"
    assert status.get("report-conclusion").text == conclusion
    assert physician.download(status.get("report-pdf").attrs["href"], "application/pdf").startswith(b"%PDF")

    # 6. Vierzon's RIS fetches the signed report through the API.
    request = only(ris.get("/api/v1/requests/", accession_number=accession))
    assert request["status"] == "reported" and request["signed_at"]
    report = ris.get(f"/api/v1/requests/{public_id}/report/")
    assert report["status"] == "signed" and report["conclusion"] == conclusion
    assert report["signed_by"] == on_duty[0]["name"]
    assert ris.download(f"/api/v1/requests/{public_id}/report/pdf/", "application/pdf").startswith(b"%PDF")

    healthz_all_ok(platform)
    errors = platform.errors_logged_since_ready()
    assert not errors, "errors in the platform's log:\n" + "\n".join(errors[:20])


def metadata_prepared(platform: Platform) -> int:
    """How many instances' DICOM JSON the platform's Redis holds (apps.worklist.dicom_json; this journey's Redis
    database is its own)."""
    import redis

    client = redis.Redis.from_url(platform.env["REDIS_URL"])
    try:
        return sum(1 for _ in client.scan_iter(match="pds-dicomweb-meta:*dicomweb-meta:*", count=1000))
    finally:
        client.close()


def offered_case(radio: Browser, exam: str) -> str | None:
    """The path of the case for ``exam`` once its page offers this radiologist to acknowledge it (shown only to
    the radiologist the case is offered to)."""
    page = radio.get("/worklist/")
    for row in page.rows():
        if exam in row.text:
            path = next(urlsplit(a.attrs["href"]).path for a in page.links
                        if row.attrs["data-case"] in a.attrs.get("href", ""))
            return path if radio.get(path).has_form("/do/acknowledge") else None
    return None


def look_at_images(radio: Browser, case_path: str, *, expected: int) -> None:
    viewer: Page = radio.get(f"{case_path}viewer/")
    series = json.loads(viewer.get("series-data").text)
    instances = [i for s in series for i in s["instances"]]
    assert len(instances) == expected, series
    slice_url = viewer.get("viewport").attrs["data-slice-url"]
    png = radio.download(slice_url.replace("/0.png", f"/{instances[0]}.png"), "image/png")
    assert png.startswith(b"\x89PNG")


def only(page: dict) -> dict:
    assert page["count"] == 1, page
    return page["results"][0]
