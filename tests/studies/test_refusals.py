"""Issue 18, points 12 and 13: what the gateway refuses leaves nothing behind, and an empty study is never routed.

The gateway's handlers run in this process on a real storage root (as in test_completion.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DataError, connection
from pydicom.uid import MRImageStorage, generate_uid

from apps.studies import services
from apps.studies.models import Instance, Series, Study
from apps.studies.services.completion import EMPTY_STUDY_GRACE_SECONDS
from dicom_gateway.checks import STATUS_VALUE_OUT_OF_RANGE
from dicom_gateway.metadata import STATUS_SOP_CLASS_MISMATCH, STATUS_SUCCESS
from tests.factories.dicom import make_instance
from tests.studies.test_completion import association, broker, c_store, gateway, quiet  # noqa: F401  (fixtures)
from tests.studies.test_services import meta_of, reconciler_watching  # noqa: F401  (autouse)

pytestmark = pytest.mark.django_db


def stored_files(gw) -> list:
    return [p for p in gw.root.rglob("*.dcm")]


def test_ct_content_sent_as_mr_is_refused_with_its_reason_and_nothing_kept(gateway, association):  # noqa: F811
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid(), sop_class=MRImageStorage, modality="CT")
    rsp = c_store(gateway, association, ds)
    assert rsp.Status == STATUS_SOP_CLASS_MISMATCH and "Modality CT" in rsp.ErrorComment
    assert not Study.objects.exists() and not Instance.objects.exists() and stored_files(gateway) == []
    ok = make_instance(study_uid=generate_uid(), series_uid=generate_uid())
    assert c_store(gateway, association, ok, spooled=False) == STATUS_SUCCESS


@pytest.mark.parametrize("keyword, value", [("InstanceNumber", "2147483648"), ("SeriesNumber", "2147483648"),
                                            ("PatientName", "DUPONT\x00JEAN"), ("PatientID", "PAT\x00"),
                                            ("AccessionNumber", "A\x00")])
@pytest.mark.parametrize("spooled", [True, False])
def test_values_the_database_cannot_hold_are_a_permanent_failure(gateway, association, keyword, value,  # noqa: F811
                                                                  spooled):
    """Before: psycopg's DataError fell into the generic handler and the sender was told to retry (0xA700)."""
    ds = make_instance(study_uid=generate_uid(), series_uid=generate_uid())
    setattr(ds, keyword, value)
    rsp = c_store(gateway, association, ds, spooled=spooled)
    assert rsp.Status == STATUS_VALUE_OUT_OF_RANGE and keyword in rsp.ErrorComment
    assert not Study.objects.exists() and not Series.objects.exists() and stored_files(gateway) == []


def test_a_data_error_after_the_study_row_leaves_no_row_and_no_file(gateway, association, monkeypatch):  # noqa: F811
    """Whatever the checks let through and the database refuses: permanent, and the study and series rows its
    first image created are removed (they used to stay, and the empty study was completed and routed)."""
    def refused(**kw):
        raise DataError("value too long for type character varying(64)")

    monkeypatch.setattr(services, "instance_record", refused)
    study_uid = generate_uid()
    rsp = c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=generate_uid()))
    assert rsp.Status == STATUS_VALUE_OUT_OF_RANGE and "database cannot store" in rsp.ErrorComment
    assert not Study.objects.exists() and not Series.objects.exists() and stored_files(gateway) == []
    monkeypatch.undo()
    # The next image of that study (another series) is received as if nothing had happened.
    assert c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=generate_uid())) == 0
    assert Study.objects.get(study_uid=study_uid).num_instances == 1


def test_a_refusal_keeps_the_rows_of_images_already_received(gateway, association, monkeypatch):  # noqa: F811
    study_uid, series_uid = generate_uid(), generate_uid()
    assert c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=series_uid)) == 0

    def refused(**kw):
        raise DataError("out of range")

    monkeypatch.setattr(services, "instance_record", refused)
    rsp = c_store(gateway, association, make_instance(study_uid=study_uid, series_uid=series_uid, number=2))
    assert rsp.Status == STATUS_VALUE_OUT_OF_RANGE
    study = Study.objects.get(study_uid=study_uid)
    assert study.num_instances == 1 and Series.objects.get(series_uid=series_uid).num_instances == 1
    assert len(stored_files(gateway)) == 1


def test_an_empty_study_is_never_completed_and_is_removed_once_quiet(association, broker, quiet):  # noqa: F811
    """A first image that failed after its study row was written (a database that went away) left the row:
    the reconciler completed it and it was routed as a case with no image."""
    site_id = association.pds_sender.site_id
    now = dt.datetime.now(dt.UTC)
    meta = meta_of(study_uid=generate_uid(), series_uid=generate_uid(), number=1)
    ref = services.study_series_ensure(site_id=site_id, calling_ae="VIERZON_CT", meta=meta, now=now)
    result = services.studies_reconcile(now=now + dt.timedelta(seconds=quiet + 1))
    assert result.completed == () and broker.sent == []
    assert Study.objects.filter(pk=ref.study_id).exists()  # quiet, but its first image may be on its way
    result = services.studies_reconcile(now=now + dt.timedelta(seconds=max(quiet, EMPTY_STUDY_GRACE_SECONDS) + 1))
    assert result.completed == () and broker.sent == []
    assert not Study.objects.filter(pk=ref.study_id).exists() and not Series.objects.exists()
    assert services.study_complete(study_id=ref.study_id, cutoff=now + dt.timedelta(seconds=60)) is False


def test_an_empty_study_with_an_image_on_its_way_is_kept(association, quiet):  # noqa: F811
    site_id = association.pds_sender.site_id
    now = dt.datetime.now(dt.UTC)
    meta = meta_of(study_uid=generate_uid(), series_uid=generate_uid(), number=1)
    ref = services.study_series_ensure(site_id=site_id, calling_ae="VIERZON_CT", meta=meta, now=now)
    services.instance_record(ref=ref, meta=meta, rel_path=meta.relative_path(), size=10, sha256="0" * 64, now=now)
    assert services.study_series_discard_empty(study_id=ref.study_id, series_id=ref.series_id) is False
    assert Study.objects.get(pk=ref.study_id).num_instances == 1
    if connection.vendor == "postgresql":
        assert Instance.objects.count() == 1
