"""The signed report as a PDF for the API: the worklist's document, so the web and the API give the same one."""

from __future__ import annotations

from apps.worklist.pdf import report_pdf

__all__ = ["report_pdf"]
