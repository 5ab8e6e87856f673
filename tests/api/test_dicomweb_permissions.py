"""Who may read images is one rule, on the web and through DICOMweb (apps.accounts.matrix IMAGE_READERS): the
coordinator reads the case (follow-up of incidents and escalations) but not its images, neither in the viewers
nor by DICOMweb; the radiologist of the case and its site's physician read both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.factories.dicom import store_study
from tests.factories.worklist import make_case

FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.mark.django_db
def test_the_coordinator_reads_the_case_but_not_its_images_on_the_web_nor_by_dicomweb(
        demo: Any, settings: Any, tmp_path: Path) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    case = make_case(demo, assign_to="radiologue", status="in_progress")
    study = store_study(tmp_path, demo.establishments["vierzon"], case=case, slices=2)
    inst = study.instances.order_by("instance_number").select_related("series").first()  # type: ignore[attr-defined]
    base = f"/dicomweb/studies/{study.study_uid}"  # type: ignore[attr-defined]
    instance = f"{base}/series/{inst.series.series_uid}/instances/{inst.sop_instance_uid}"
    images = {
        "viewer": f"/worklist/c/{case.public_id}/viewer/",
        "ohif": f"/worklist/c/{case.public_id}/ohif/",
        "qido": f"/dicomweb/studies?StudyInstanceUID={study.study_uid}",  # type: ignore[attr-defined]
        "series": f"{base}/series",
        "metadata": f"{base}/metadata",
        "retrieve": base,
        "frames": f"{instance}/frames/1",
        "rendered": f"{instance}/rendered",
    }

    def answers(username: str) -> dict[str, int]:
        client = Client()
        client.force_login(demo.users[username])
        got = {"case": client.get(f"/worklist/c/{case.public_id}/").status_code}
        for name, url in images.items():
            got[name] = client.get(url, HTTP_ACCEPT=FRAME_ACCEPT if name == "frames" else "*/*").status_code
        return got

    coordinator = answers("coordinateur")
    assert coordinator["case"] == 200
    assert {k: v for k, v in coordinator.items() if k != "case"} == dict.fromkeys(images, 403), coordinator
    for reader in ("radiologue", "urgentiste"):
        got = answers(reader)
        assert got["case"] == 200 and all(got[k] == 200 for k in images if k not in ("viewer", "ohif")), (reader, got)
        assert got["viewer"] == 200 and got["ohif"] in (200, 302), (reader, got)
