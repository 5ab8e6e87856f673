#!/usr/bin/env python3
"""DICOMweb per-request cost on the server alone (issue 19): requests per second of ``…/frames/1`` and of a
series' ``…/metadata`` on one core, in process (Django's test client through the whole middleware stack, a
session logged in past the second factor), with the SQL queries each request makes. Database and cache as
configured by the environment (``DATABASE_URL``, ``REDIS_URL``: production uses PostgreSQL and Redis).
``--profile`` prints the cProfile of the frame requests. The last line is one ``name=value`` summary.

    DATABASE_URL=postgres://…/x REDIS_URL=redis://…/n python benchmarks/dicomweb_rps.py [--slices 60] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pds-dicomweb-rps-"))
    os.environ.update({"DJANGO_SETTINGS_MODULE": "pds_platform.settings", "PDS_VAR_DIR": str(work),
                       "PDS_DICOM_STORAGE_ROOT": str(work / "dicom"), "PDS_TEST_FAST_HASHER": "1",
                       "PDS_LOG_LEVEL": "WARNING"})
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'db.sqlite3'}")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django_otp.plugins.otp_totp.models import TOTPDevice

    setup_test_environment()
    from django.test.utils import get_runner

    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        from apps.regions.demo import demo_region_load
        from apps.studies.models import Instance
        from tests.factories.dicom import store_study
        from tests.factories.worklist import make_case

        demo = demo_region_load()
        user = demo.users["radiologue"]
        case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
        study = store_study(work / "dicom", demo.establishments["vierzon"], case=case, series=1,
                            slices=args.slices, rows=512, cols=512)
        uid = study.study_uid  # type: ignore[attr-defined]
        rows = list(Instance.objects.filter(study=study).order_by("instance_number")
                    .values_list("sop_instance_uid", "series__series_uid"))
        device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        client = Client()
        client.force_login(user)
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
        base = f"/dicomweb/studies/{uid}/series/{rows[0][1]}"
        accept = {"HTTP_ACCEPT": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}

        def fetch(url: str, **headers: str) -> None:
            response = client.get(url, secure=True, **headers)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert response.status_code == 200 and body, (url, response.status_code, body[:300])

        frame_urls = [f"{base}/instances/{sop}/frames/1" for sop, _ in rows]
        for url in frame_urls[:3]:
            fetch(url, **accept)
        fetch(f"{base}/metadata")
        results = {}
        for name, urls, headers in (("frames", frame_urls, accept), ("metadata", [f"{base}/metadata"], {})):
            with CaptureQueriesContext(connection) as queries:
                fetch(urls[-1], **headers)
            sql = [q["sql"] for q in queries.captured_queries]
            for q in sql:
                print(f"  [{name}] {q[:160]}")
            count, start = 0, time.process_time()
            profiler = None
            if args.profile and name == "frames":
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            while time.process_time() - start < args.seconds:
                fetch(urls[count % len(urls)], **headers)
                count += 1
            cpu = time.process_time() - start
            if profiler is not None:
                import pstats

                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            results[name] = (count / cpu, len(sql))
            print(f"{name}: {count / cpu:.0f} req/s of CPU ({1000 * cpu / count:.2f} ms each), "
                  f"{len(sql)} SQL queries per request")
        print(f"dicomweb_slices={args.slices} frames_rps={results['frames'][0]:.0f} "
              f"frames_queries={results['frames'][1]} metadata_rps={results['metadata'][0]:.0f} "
              f"metadata_queries={results['metadata'][1]}")
    finally:
        runner.teardown_databases(old)
    return 0


if __name__ == "__main__":
    sys.exit(main())
