"""Issue 19: a frame request reads the series' file paths once (kept ``VISIBLE_FOR`` seconds with the visibility
decision) instead of one instance query each; the visibility rule is still decided first on every request, so a
caller outside the case never gets a frame through another caller's kept paths, an image received since is
found, and a reader whose case was taken away is refused once the kept decision runs out (VISIBLE_FOR seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.authorization import ACCESS_REFUSED
from apps.audit.models import AuditEntry
from apps.studies.models import Instance
from apps.worklist.models import Case
from tests.factories.dicom import store_study
from tests.factories.worklist import make_case

FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def _frame(client: Client, study: Any, inst: Instance) -> int:
    url = (f"/dicomweb/studies/{study.study_uid}/series/{inst.series.series_uid}"
           f"/instances/{inst.sop_instance_uid}/frames/1")
    return client.get(url, HTTP_ACCEPT=FRAME_ACCEPT).status_code


@pytest.mark.django_db
def test_frames_of_a_series_share_one_path_query_and_visibility_still_decides(
        demo: Any, settings: Any, tmp_path: Path) -> None:
    settings.PDS_DICOM_STORAGE_ROOT = tmp_path
    cache.clear()
    case = make_case(demo, assign_to="radiologue", status="in_progress")
    study = store_study(tmp_path, demo.establishments["vierzon"], case=case, slices=4)
    first, *others = list(Instance.objects.filter(study=study).select_related("series").order_by("instance_number"))
    reader = Client()
    reader.force_login(demo.users["radiologue"])
    assert _frame(reader, study, first) == 200
    with CaptureQueriesContext(connection) as queries:
        assert all(_frame(reader, study, inst) == 200 for inst in others)
    assert not [q for q in queries.captured_queries if "studies_instance" in q["sql"]], "one path query per frame"

    # Another radiologist, outside the case: refused (and audited) although the series' paths are kept.
    outsider = Client()
    outsider.force_login(demo.users["radio.durand1"])
    refusals = AuditEntry.objects.filter(action=ACCESS_REFUSED).count()
    assert _frame(outsider, study, first) == 404
    assert AuditEntry.objects.filter(action=ACCESS_REFUSED).count() == refusals + 1

    # An image received after the paths were read is served (a path not kept is looked up again).
    late = store_study(tmp_path, demo.establishments["vierzon"], slices=1, patient_id="PAT-LATE")
    moved = Instance.objects.filter(study=late).select_related("series").get()
    Instance.objects.filter(pk=moved.pk).update(study=study, series=first.series)
    moved.refresh_from_db()
    assert _frame(reader, study, moved) == 200

    # The case taken away: refused once the kept decision (VISIBLE_FOR seconds) has run out.
    Case.objects.filter(pk=case.pk).update(assigned_to=demo.users["radio.durand1"])
    cache.clear()  # what VISIBLE_FOR seconds do to the kept decision and paths
    assert _frame(reader, study, others[0]) == 404
