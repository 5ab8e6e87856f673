"""Logging filters."""

from __future__ import annotations

import logging


class HealthProbeFilter(logging.Filter):
    """Drops Django's "Service Unavailable: /healthz" records. A 503 from the health probe is the probe doing
    its job (e.g. while the platform's processes start), reported to whoever asked; logged as ERROR it would
    bury real errors in the log an operator reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return getattr(request, "path", "") != "/healthz" or getattr(record, "status_code", 0) != 503
