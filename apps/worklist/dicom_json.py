"""The stored instances' metadata as DICOM JSON (PS3.18 F.2), as DICOMweb's ``/metadata`` answers it, and its
cache, filled ahead of the reader.

Invariants:
- Each instance's JSON is cached under its row, path and checksum: a stored file never changes under its row (a
  conflicting copy is quarantined, not written over), so an entry never goes stale; the service's base URL is a
  placeholder in the cache, put in when served.
- A study is prepared once a reader may open it: when a radiologist's worklist or case page shows its case
  (:func:`cases_metadata_prepare_request`, a worker task at the lowest CPU priority), seconds before the
  "Read" click; the viewer then reads the series' metadata from the cache instead of 300 files. Not at the
  study's completion: on a busy night most studies wait for a reader, and preparing each one as it arrived took
  a fifth of the 2 cores' throughput from the receivers (benchmarks/load.py). Only with a cache the web processes
  share (Redis); a process-local cache (the embedded default without Redis) is filled by the web process on the
  first opening. Nothing here is a reading by a user: the audit entry is the
  DICOMweb request's (apps.api.views.dicomweb), one per study opened.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import caches

from apps.studies.models import Instance, Study
from apps.worklist.imaging import frame_count, instance_file
from apps.worklist.priors.models import PriorStudy
from apps.worklist.services.common import task_send_on_commit

PREPARE_TASK = "worklist.metadata_prepare"
CACHE_SECONDS = 24 * 3600
_BASE = "@@pds-dicomweb-base@@"


def attr(vr: str, *values: Any) -> dict[str, Any]:
    """A DICOM JSON attribute; empty values omitted (an attribute without Value)."""
    kept = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


def instance_metadata(inst: Any, *, base: str) -> dict[str, Any]:
    """The stored file's attributes as DICOM JSON, pixel data as a BulkDataURI to its frames. ``inst`` with its
    study and series loaded."""
    import pydicom

    ds = pydicom.dcmread(str(instance_file(inst.path)), stop_before_pixels=True)
    url = f"{base}/studies/{inst.study.study_uid}/series/{inst.series.series_uid}/instances/{inst.sop_instance_uid}"
    data: dict[str, Any] = ds.to_json_dict(bulk_data_threshold=4096, bulk_data_element_handler=lambda _e: url)
    data["00083002"] = attr("UI", str(ds.file_meta.get("TransferSyntaxUID", "")))
    if "PixelData" not in ds and "Rows" in ds:
        frames = ",".join(str(i) for i in range(1, frame_count(ds) + 1))
        data["7FE00010"] = {"vr": "OW", "BulkDataURI": f"{url}/frames/{frames}"}
    return data


def _cache() -> Any:
    return caches["dicomweb_metadata"]


def _keys(instances: Iterable[Any]) -> dict[str, Any]:
    return {"dicomweb-meta:" + hashlib.sha256(f"{i.pk}:{i.path}:{i.sha256}".encode()).hexdigest(): i
            for i in instances}


def _fill(keys: dict[str, Any]) -> tuple[dict[str, str], int]:
    """The cached JSON of each key, what was missing read from the files and cached; and how many were read."""
    cache = _cache()
    found: dict[str, str] = cache.get_many(list(keys))
    missing = {key: json.dumps(instance_metadata(inst, base=_BASE), separators=(",", ":"))
               for key, inst in keys.items() if key not in found}
    if missing:
        cache.set_many(missing, CACHE_SECONDS)
    found.update(missing)
    return found, len(missing)


def metadata_document(instances: list[Any], *, base: str) -> str:
    """The DICOM JSON array of the instances' metadata (from the cache, the files for what it lacks)."""
    keys = _keys(instances)
    found, _ = _fill(keys)
    return ("[" + ",".join(found[key] for key in keys) + "]").replace(_BASE, json.dumps(base)[1:-1])


def shared_cache() -> bool:
    """Whether the web processes read the cache this process fills (not a process-local memory cache)."""
    return not settings.CACHES["dicomweb_metadata"]["BACKEND"].endswith("LocMemCache")


def cases_metadata_prepare_request(*, case_ids: list[int]) -> int:
    """The studies of these cases (a reader's worklist or case page) and their retrieved priors, each asked once
    of a worker (a marker in the same cache); how many were asked now. A lost message costs only the head start:
    the viewer's request reads the files itself."""
    if not (case_ids and settings.PDS_DICOMWEB_PREPARE_METADATA and shared_cache()):
        return 0
    study_ids = set(Study.objects.filter(case_id__in=case_ids).values_list("pk", flat=True))
    study_ids |= set(PriorStudy.objects.filter(case_id__in=case_ids, study__isnull=False)
                     .values_list("study_id", flat=True))
    cache = _cache()
    markers = {f"dicomweb-prepare:{pk}": pk for pk in sorted(study_ids)}
    asked = cache.get_many(list(markers))
    sent = 0
    for marker, pk in markers.items():
        if marker not in asked and cache.add(marker, 1, CACHE_SECONDS):
            task_send_on_commit(PREPARE_TASK, pk)
            sent += 1
    return sent


def study_metadata_prepare(*, study_id: int) -> int:
    """Every instance of the study in the cache; how many were read from their files (0: all there already, or a
    file missing: the viewer's request reports it, this is only a head start)."""
    rows = Instance.objects.filter(study_id=study_id).select_related("study", "series").order_by("pk")
    try:
        return _fill(_keys(rows))[1]
    except FileNotFoundError:
        return 0
