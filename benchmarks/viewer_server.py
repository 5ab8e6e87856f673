#!/usr/bin/env python3
"""Viewer latency on the server alone (issue 19; in Chromium beside Orthanc: benchmarks/viewer.py): time to first
image of a 300-slice 512x512 CT on OHIF's path through our DICOMweb
(QIDO study + series, series metadata, first frame) and on the server-rendered viewer (page + first PNG), then
the time of one slice step on each (a frame; a PNG rendered), median and p95.

In-process (Django's test client through the whole middleware stack: session, second factor, permission matrix,
audit) on a scratch SQLite database, so no HTTP server, network or browser time is counted: the server's share
of what a radiologist waits for. The last line is one ``name=value`` summary.

    python benchmarks/viewer_server.py [--slices 300] [--steps 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pds-viewer-bench-"))
    for name in [k for k in os.environ if k.startswith(("DJANGO_", "PDS_", "DATABASE_", "CELERY_", "REDIS_"))]:
        del os.environ[name]
    os.environ.update({"DJANGO_SETTINGS_MODULE": "pds_platform.settings", "DJANGO_DEBUG": "1",
                       "PDS_VAR_DIR": str(work), "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
                       "PDS_DICOM_STORAGE_ROOT": str(work / "dicom"), "PDS_TEST_FAST_HASHER": "1",
                       "CELERY_TASK_ALWAYS_EAGER": "0", "PDS_LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from apps.regions.demo import demo_region_load
    from apps.studies.models import Instance
    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    call_command("migrate", verbosity=0)
    demo = demo_region_load()
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    t0 = time.perf_counter()
    study = store_study(work / "dicom", demo.establishments["vierzon"], case=case, series=1, slices=args.slices,
                        rows=512, cols=512)
    print(f"study written: {args.slices} slices 512x512 in {time.perf_counter() - t0:.1f} s")
    uid = study.study_uid  # type: ignore[attr-defined]
    instances = list(Instance.objects.filter(study=study).select_related("series")
                     .order_by("instance_number").values_list("pk", "sop_instance_uid", "series__series_uid"))
    client = Client()
    client.force_login(demo.users["radiologue"])

    def get(url: str, **headers: str) -> float:
        start = time.perf_counter()
        response = client.get(url, **headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code == 200 and body, (url, response.status_code)
        return (time.perf_counter() - start) * 1000

    frame_accept = {"HTTP_ACCEPT": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    series_uid = instances[0][2]
    base = f"/dicomweb/studies/{uid}"
    # Warm the process (imports, URL resolvers, templates, codecs) on other URLs, as a running server is.
    client.get("/dicomweb/studies?StudyInstanceUID=1.2.3")
    client.get("/worklist/")
    client.get(f"/worklist/c/{case.public_id}/")
    # OHIF's path to the first image: the study (QIDO), its series, the series' metadata, the first frame.
    ohif_parts = {
        "qido_study": get(f"/dicomweb/studies?StudyInstanceUID={uid}"),
        "qido_series": get(f"{base}/series"),
        "metadata": get(f"{base}/series/{series_uid}/metadata"),
        "first_frame": get(f"{base}/series/{series_uid}/instances/{instances[0][1]}/frames/1", **frame_accept),
    }
    ohif_first = sum(ohif_parts.values())
    # The server-rendered viewer: its page, then the first slice as PNG.
    viewer_parts = {"page": get(f"/worklist/c/{case.public_id}/viewer/"),
                    "first_png": get(f"/worklist/c/{case.public_id}/instances/{instances[0][0]}.png")}
    viewer_first = sum(viewer_parts.values())
    picks = instances[1:args.steps + 1]
    frame_steps = [get(f"{base}/series/{series_uid}/instances/{sop}/frames/1", **frame_accept) for _, sop, _ in picks]
    png_steps = [get(f"/worklist/c/{case.public_id}/instances/{pk}.png") for pk, _, _ in picks]
    print("OHIF path (DICOMweb), first image: " + ", ".join(f"{k} {v:.0f} ms" for k, v in ohif_parts.items())
          + f" = {ohif_first:.0f} ms")
    print("server-rendered viewer, first image: " + ", ".join(f"{k} {v:.0f} ms" for k, v in viewer_parts.items())
          + f" = {viewer_first:.0f} ms")
    print(f"slice step over {len(picks)} slices: DICOMweb frame median {statistics.median(frame_steps):.1f} ms, "
          f"p95 {p95(frame_steps):.1f} ms; server PNG median {statistics.median(png_steps):.1f} ms, "
          f"p95 {p95(png_steps):.1f} ms")
    print(f"viewer_slices={args.slices} ohif_first_image_ms={ohif_first:.0f} "
          f"ohif_metadata_ms={ohif_parts['metadata']:.0f} server_first_image_ms={viewer_first:.0f} "
          f"frame_step_median_ms={statistics.median(frame_steps):.1f} frame_step_p95_ms={p95(frame_steps):.1f} "
          f"png_step_median_ms={statistics.median(png_steps):.1f} png_step_p95_ms={p95(png_steps):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
