"""schemathesis against the live API, as an integrator's CI would run it: the real CLI (`schemathesis run`) with
every check (`-c all`) and every phase (examples, coverage, fuzzing, stateful) on the schema drf-spectacular
serves, with a read-write API key, against a live server (pytest-django's, on this test's database, DEBUG off
as in production). Any failure fails the test, its report in the assertion message.

The data give every operation something real to answer: requests (one with a signed report and an
addendum), studies received through the DICOM gateway's own parsing and storage, one of them with the StudyDate
00010101 a modality sent once, a webhook subscription. Their identifiers are offered to the fuzzer through a
dictionary (half the draws; the other half stays free, so malformed identifiers are still tried).

Configured, with the reason, in the generated schemathesis.toml:
- 422 is an acceptable answer to schema-valid data: the schema cannot say that an INS key is wrong or that the
  patient opposes tele-medicine; the platform answers those with 422 (docs/security.md), never 400;
- webhook targets may be loopback (PDS_WEBHOOK_ALLOW_PRIVATE, the setting tests use): the fuzzer registers
  URLs of this very server, which production refuses by a rule the schema cannot express.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.api.conftest import report_sign, request_create, world_create
from tests.factories.dicom import make_instance

pytestmark = pytest.mark.integration

# Enough to find each failure issue 14 lists (they were found with these settings before the fixes), within
# about two minutes on a 2-core machine.
MAX_EXAMPLES = 10
SEED = 14
MAX_TIME_SECONDS = 150  # schemathesis's own budget (--max-time): fuzzing and stateful repeat until it is spent


def study_receive(site_id: int, *, study_date: str, accession: str) -> Any:
    """A study as the gateway stores it: DICOM bytes parsed by dicom_gateway.metadata, then apps.studies."""
    from apps.studies import services
    from dicom_gateway.metadata import instance_meta_parse

    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), accession=accession)
    ds.StudyDate = study_date
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    meta = instance_meta_parse(buffer.getvalue(), transfer_syntax_uid=ExplicitVRLittleEndian)
    now = timezone.now()
    ref = services.study_series_ensure(site_id=site_id, calling_ae="ALPHA_CT", meta=meta, now=now)
    services.instance_record(ref=ref, meta=meta, rel_path=meta.relative_path(), size=10, sha256="0" * 64, now=now)
    return ref


def config_toml(ids: dict[str, list[Any]]) -> str:
    def values(items: list[Any]) -> str:
        return "[" + ", ".join(str(v) if isinstance(v, int) else f'"{v}"' for v in items) + "]"

    return f"""
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

[dictionaries.public_ids]
values = {values(ids["public_id"])}

[dictionaries.ids]
values = {values(ids["id"])}

[dictionaries.resource_ids]
values = {values(ids["resource_id"])}

[dictionaries.ins]
values = {values(ids["ins"])}

[parameters]
"path.public_id" = {{ dictionary = "public_ids", probability = 0.5 }}
"path.id" = {{ dictionary = "ids", probability = 0.5 }}
"path.resource_id" = {{ dictionary = "resource_ids", probability = 0.5 }}
"body.patient_ins" = {{ dictionary = "ins", probability = 0.8 }}
"""


def test_api_passes_schemathesis_with_every_check(live_server: Any, settings: Any, tmp_path: Path) -> None:
    from apps.api.models import WebhookSubscription
    from apps.api.services import webhook_subscription_create
    from apps.worklist.models import Case

    settings.PDS_API_THROTTLE_RATE = "1000000/min"  # 429 is documented; here it would only hide operations
    settings.PDS_WEBHOOK_ALLOW_PRIVATE = True
    world = world_create()
    key = world.keys["a_rw"][1]
    reported = request_create(world)
    open_request = request_create(world, accession_number="ACC-0002", urgency="urgent")
    report_sign(Case.objects.get(public_id=reported["id"]), world.users["radiologist"], addendum="Relu.")
    plausible = study_receive(world.site_a.pk, study_date=timezone.localdate().strftime("%Y%m%d"),
                              accession="ACC-0001")
    absurd = study_receive(world.site_a.pk, study_date="00010101", accession="ACC-0003")
    webhook = webhook_subscription_create(api_key=world.keys["a_rw"][0], url="https://ris.example.org/pds",
                                          events=["request.created"])
    assert WebhookSubscription.objects.filter(pk=webhook.pk).exists()
    ids = {"public_id": [reported["id"], open_request["id"]],
           "id": [plausible.study_id, absurd.study_id, world.site_a.pk, webhook.pk],
           "resource_id": [reported["id"], *(str(i) for i in (plausible.study_id, absurd.study_id, world.site_a.pk,
                                                               world.users["radiologist"].pk))],
           # INS numbers with a right key: a random one is wrong 96 times out of 97 (a 422), so without these
           # the fuzzer would hardly ever create a request.
           "ins": ["", "255081416802538", "170017512345665", "275029912345611"]}
    (tmp_path / "schemathesis.toml").write_text(config_toml(ids))

    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file",
               str(tmp_path / "schemathesis.toml"), "run", f"{live_server.url}/api/schema/",
               "--header", f"Authorization: Bearer {key}", "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
               "--seed", str(SEED), "--workers", "1", "--max-time", str(MAX_TIME_SECONDS), "--no-color", "--report", "junit",
               "--report-dir", str(tmp_path / "report")]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=MAX_TIME_SECONDS + 120)
    elapsed = time.monotonic() - started
    log = tmp_path / "schemathesis.log"
    log.write_text(proc.stdout + proc.stderr)
    summary = proc.stdout[proc.stdout.rfind("SUMMARY"):]
    print(summary)
    assert proc.returncode == 0, f"schemathesis failed (full report: {log}):\n{digest(proc.stdout)}\n{summary}"
    assert "Tested: 29" in summary or "Tested:     29" in summary or "29/29" in summary, summary
    assert elapsed < MAX_TIME_SECONDS + 30, f"schemathesis took {elapsed:.0f}s"


def digest(report: str) -> str:
    """Each failure of the report in a few lines: operation, check, status, the offending part, curl."""
    keep = re.compile(r"^(_{3,} .* _{3,}|- ST\d+ .*|\[\d{3}\] .*|\s+(Invalid component|Received|Documented|Schema at)"
                      r".*|\s+curl .*|Runtime Error|.*Error: .*)$")
    return "\n".join(line[:400] for line in report.splitlines() if keep.match(line))
