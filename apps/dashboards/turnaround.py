"""Turnaround durations as packed numpy records, and exact percentiles over them.

A record is one case: its on-call line (0 when none), its urgency (index in ``URGENCIES``) and the five
stage durations of ``STAGE_FIELDS`` in seconds (NaN when the stage was not reached). ``DailyTurnaround``
stores them per (day, site, modality); the panel concatenates a year of them (about 200,000 records,
9 MB) and computes median and p90 per group with the same linear interpolation as PostgreSQL's
``percentile_cont``, so aggregated and live figures are identical.

Pure functions over plain data: no database access here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# (key, start field, end field), in the order of apps.dashboards.selectors.STAGES.
STAGE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("request_validation", "requested_at", "validated_at"),
    ("images_assigned", "images_complete_at", "assigned_at"),
    ("assigned_acknowledged", "assigned_at", "acknowledged_at"),
    ("acknowledged_signed", "acknowledged_at", "signed_at"),
    ("request_signed", "requested_at", "signed_at"),
)
TIMESTAMP_FIELDS = ("requested_at", "validated_at", "images_complete_at", "assigned_at", "acknowledged_at",
                    "signed_at")
URGENCIES: tuple[str, ...] = ("vital", "urgent", "deferred")  # worklist.Urgency, in a frozen order
RECORD = np.dtype([("line", "<i4"), ("urgency", "u1"), ("seconds", "<f8", (len(STAGE_FIELDS),))])


def case_record(case: dict[str, Any]) -> tuple[int, int, list[float]] | None:
    """The record of a case (a dict with ``assigned_line_id``, ``urgency`` and the timestamp fields), or
    None when it reached no stage."""
    seconds = []
    for _key, a, b in STAGE_FIELDS:
        start, end = case[a], case[b]
        seconds.append((end - start).total_seconds() if start is not None and end is not None else np.nan)
    if all(np.isnan(s) for s in seconds):
        return None
    return case["assigned_line_id"] or 0, URGENCIES.index(case["urgency"]), seconds


def records_pack(records: Sequence[tuple[int, int, list[float]]]) -> bytes:
    return np.array(records, dtype=RECORD).tobytes()


def _group_percentiles(sorted_values: np.ndarray, groups: np.ndarray, n_groups: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, p50, p90) per group index 0..n_groups-1; ``sorted_values`` ascending (no NaN) and
    ``groups`` aligned with it. Linear interpolation, as ``percentile_cont``."""
    # A stable sort by group of values already in order leaves each group's values in order: one
    # sort of small integers (radix) per dimension instead of one lexicographic sort each.
    v = sorted_values[np.argsort(groups, kind="stable")]
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    out = []
    for p in (0.5, 0.9):
        k = (counts - 1) * p
        lo = np.floor(k).astype(np.int64)
        hi = np.ceil(k).astype(np.int64)
        if not len(v):
            out.append(np.full(n_groups, np.nan))
            continue
        vlo = v[np.where(has, starts + lo, 0)]
        vhi = v[np.where(has, starts + hi, 0)]
        out.append(np.where(has, vlo + (vhi - vlo) * (k - lo), np.nan))
    return counts, out[0], out[1]


def turnaround_rows(parts: Iterable[tuple[Any, str, bytes | memoryview]], *, line_scope: set[int] | None = None,
                    scope_site_id: int | None = None) -> list[dict[str, Any]]:
    """Rows in the shape of the live turnaround query: one per group of each dimension (site, modality,
    line, urgency, all) with ``<stage>_n``, ``<stage>_p50``, ``<stage>_p90`` (seconds) and ``_dim``.

    ``parts``: (site id, modality code, packed records) chunks, e.g. a year of ``DailyTurnaround`` rows.
    With ``scope_site_id`` only the records of that site or of a line in ``line_scope`` are kept (an
    establishment administrator's scope)."""
    blobs: list[bytes | memoryview] = []
    site_of_chunk, modality_of_chunk, sizes = [], [], []
    site_ix: dict[Any, int] = {}
    modality_ix: dict[str, int] = {}
    for site_id, modality, blob in parts:
        # Chunks are joined as bytes and decoded once: a year is some 20,000 chunks, and per-chunk numpy
        # calls would cost more than the percentiles themselves.
        blobs.append(blob)
        sizes.append(len(blob) // RECORD.itemsize)
        site_of_chunk.append(site_ix.setdefault(site_id, len(site_ix)))
        modality_of_chunk.append(modality_ix.setdefault(modality, len(modality_ix)))
    recs = np.frombuffer(b"".join(blobs), dtype=RECORD)
    site_groups = np.repeat(np.array(site_of_chunk, dtype=np.int16), sizes)
    modality_groups = np.repeat(np.array(modality_of_chunk, dtype=np.int16), sizes)
    if scope_site_id is not None:
        keep = np.isin(recs["line"], sorted(line_scope or ()))
        if scope_site_id in site_ix:
            keep |= site_groups == site_ix[scope_site_id]
        recs, site_groups, modality_groups = recs[keep], site_groups[keep], modality_groups[keep]
    if not len(recs):
        return []
    line_values, line_groups = np.unique(recs["line"], return_inverse=True)
    dims: dict[str, tuple[np.ndarray, list[Any], str | None]] = {
        "site": (site_groups, list(site_ix), "site_id"),
        "modality": (modality_groups, list(modality_ix), "modality_id"),
        "line": (line_groups.reshape(-1).astype(np.int16), [int(x) or None for x in line_values],
                 "assigned_line_id"),
        "urgency": (recs["urgency"].astype(np.int16), list(URGENCIES), "urgency"),
        "all": (np.zeros(len(recs), dtype=np.int16), [None], None),
    }
    # Each stage's durations sorted once; the groups of every dimension then follow that order.
    seconds = recs["seconds"].T.copy()  # one contiguous row per stage (the records are packed, unaligned)
    stages = []
    for s in range(len(STAGE_FIELDS)):
        values = seconds[s]
        order = np.flatnonzero(~np.isnan(values))
        order = order[np.argsort(values[order])]
        stages.append((values[order], order))
    rows: list[dict[str, Any]] = []
    for dim, (groups, labels, col) in dims.items():
        present = np.bincount(groups, minlength=len(labels)) > 0
        dim_rows: list[dict[str, Any]] = [
            {"site_id": None, "modality_id": None, "assigned_line_id": None, "urgency": None, "_dim": dim}
            for _ in labels]
        for g, label in enumerate(labels):
            if col:
                dim_rows[g][col] = label
        for s, (key, _a, _b) in enumerate(STAGE_FIELDS):
            values, order = stages[s]
            counts, p50, p90 = _group_percentiles(values, groups[order], len(labels))
            for g in range(len(labels)):
                n = int(counts[g])
                dim_rows[g][f"{key}_n"] = n
                dim_rows[g][f"{key}_p50"] = float(p50[g]) if n else None
                dim_rows[g][f"{key}_p90"] = float(p90[g]) if n else None
        rows.extend(r for g, r in enumerate(dim_rows) if present[g])
    return rows
