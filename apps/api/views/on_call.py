"""On-call lookups of the RIS API: who is on duty now, and the coverage of the region."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import selectors
from apps.api import serializers as s
from apps.api.views.base import ERRORS, PROBLEM, ApiView, not_available
from apps.core.errors import NotFoundError
from apps.core.timezones import PARIS

# --- On-call -----------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """Plain JSON from the rosters/routing contracts (frozen dataclasses, models, dates)."""
    import dataclasses

    from django.db import models

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, models.Model):
        return {"id": value.pk, "name": getattr(value, "display_name", None) or str(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class OnDutyView(ApiView):
    query_serializers = {"get": s.OnDutyQuerySerializer}

    @extend_schema(summary="Who is on duty for modality M at site S at time T",
                   parameters=[s.OnDutyQuerySerializer], responses={200: OpenApiTypes.OBJECT, (503, "application/problem+json"): PROBLEM, **ERRORS})
    def get(self, request: Request) -> Response:
        q = s.OnDutyQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        site_id = q.validated_data["site"]
        if not selectors.establishments_visible_to(request.user).filter(pk=site_id).exists():
            raise NotFoundError("No such establishment.", extra={"site": ["Unknown establishment."]})
        at = q.validated_data.get("at") or timezone.now()
        try:
            from apps.routing.selectors import on_duty
        except ImportError as exc:
            raise not_available("On-call lookup") from exc
        result = on_duty(site_id=site_id, modality_code=q.validated_data["modality"], at=at)
        return Response({"site": site_id, "modality": q.validated_data["modality"],
                         "at": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                         "on_duty": _jsonable(result)})


class CoverageView(ApiView):
    query_serializers = {"get": s.CoverageQuerySerializer}

    @extend_schema(summary="Tonight's coverage of the region (or a whole week with week_start)",
                   description="Without week_start: the cells of the PDS period in progress at `at` (default now), "
                               "or of the next one (tonight). With week_start: the seven days from that Monday.",
                   parameters=[s.CoverageQuerySerializer],
                   responses={200: OpenApiTypes.OBJECT, (503, "application/problem+json"): PROBLEM, **ERRORS})
    def get(self, request: Request) -> Response:
        q = s.CoverageQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        region_id = selectors.region_id_of(request.user)
        if region_id is None:
            raise NotFoundError("No region for this caller.")
        try:
            from apps.rosters.selectors import coverage_report
        except ImportError as exc:
            raise not_available("Coverage report") from exc
        site_id = q.validated_data.get("site")
        week_start = q.validated_data.get("week_start")
        if week_start is not None:
            week_start -= dt.timedelta(days=week_start.weekday())
            cells = list(coverage_report(region_id=region_id, week_start=week_start).cells)
        else:
            at = q.validated_data.get("at") or timezone.now()
            day = at.astimezone(PARIS).date()
            monday = day - dt.timedelta(days=day.weekday())
            cells = []
            # The period in progress may have started last week (Sunday night); the next one may be next week.
            for ws in (monday - dt.timedelta(days=7), monday, monday + dt.timedelta(days=7)):
                cells += [c for c in coverage_report(region_id=region_id, week_start=ws).cells if c.end > at]
            if cells:
                first = min(c.start for c in cells)
                cells = [c for c in cells if c.start == first]
            week_start = monday
        if site_id is not None:
            cells = [c for c in cells if getattr(c, "site_id", None) == site_id]
        return Response({"region": region_id, "week_start": week_start.isoformat(), "cells": _jsonable(cells)})
