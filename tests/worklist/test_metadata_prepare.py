"""Issue 19: the studies a radiologist's "Read" may open are prepared for the viewer (their DICOM JSON in the
shared cache, apps.worklist.dicom_json) when the worklist or the case page shows their case."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.worklist import ohif_release


@pytest.mark.django_db
def test_a_readers_worklist_asks_once_for_its_studies_and_priors_with_a_shared_cache(
        demo: Any, settings: Any, tmp_path: Path, login: Any, django_capture_on_commit_callbacks: Any) -> None:
    """The radiologist's worklist (and case page) asks a worker to prepare the studies its "Read" may open, the
    case's and its retrieved priors, once each; with a process-local cache (the embedded default without Redis) a
    worker's copy would help nobody, and the operator may turn it off: nothing is sent."""
    from apps.worklist import dicom_json
    from apps.worklist.priors.models import PriorState, PriorStudy
    from pds_platform.celery import app
    from tests.factories.dicom import store_study
    from tests.factories.worklist import make_case

    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    settings.PDS_OHIF_ROOT = tmp_path / "ohif"
    (tmp_path / "ohif" / ohif_release.VERSION).mkdir(parents=True)
    (tmp_path / "ohif" / ohif_release.VERSION / ohif_release.MARKER).write_text("x")
    settings.CACHES = {**settings.CACHES, "dicomweb_metadata": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/15",
        "KEY_PREFIX": secrets.token_hex(4)}}
    case = make_case(demo, assign_to="radiologue", status="awaiting_reading")
    study = store_study(tmp_path, demo.establishments["vierzon"], case=case)
    prior = store_study(tmp_path, demo.establishments["vierzon"])
    PriorStudy.objects.create(case=case, study_uid=prior.study_uid, study=prior,  # type: ignore[attr-defined]
                              state=PriorState.RETRIEVED, listed_at=timezone.now())
    sent: list[tuple[str, list[int]]] = []
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(app, "send_task", lambda name, args, **kw: sent.append((name, args)))
    try:
        radiologist = login("radiologue")
        with django_capture_on_commit_callbacks(execute=True):
            assert radiologist.get("/worklist/").status_code == 200
        assert sorted(sent) == sorted([(dicom_json.PREPARE_TASK, [study.pk]),  # type: ignore[attr-defined]
                                       (dicom_json.PREPARE_TASK, [prior.pk])])  # type: ignore[attr-defined]
        with django_capture_on_commit_callbacks(execute=True):  # the list's next refresh, the case page
            radiologist.get("/worklist/rows")
            radiologist.get(f"/worklist/c/{case.public_id}/")
        assert len(sent) == 2
        other = make_case(demo, assign_to="radiologue", status="awaiting_reading")
        later = store_study(tmp_path, demo.establishments["vierzon"], case=other)
        settings.PDS_DICOMWEB_PREPARE_METADATA = False  # the operator turned it off
        assert dicom_json.cases_metadata_prepare_request(case_ids=[other.pk]) == 0
        settings.PDS_DICOMWEB_PREPARE_METADATA = True
        settings.CACHES = {**settings.CACHES, "dicomweb_metadata": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        assert dicom_json.cases_metadata_prepare_request(case_ids=[other.pk]) == 0
        assert (dicom_json.PREPARE_TASK, [later.pk]) not in sent  # type: ignore[attr-defined]
    finally:
        monkeypatch.undo()
