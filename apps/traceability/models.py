"""Technical incidents as data: created by the gateway, the routing engine, webhooks and by hand."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class IncidentKind(models.TextChoices):
    ASSOCIATION_REFUSED = "association_refused", _("DICOM association refused")
    FILE_REJECTED = "file_rejected", _("DICOM file rejected")
    DUPLICATE_CONFLICT = "duplicate_conflict", _("Conflicting duplicate quarantined")
    STORAGE_FULL = "storage_full", _("Storage threshold reached")
    INCOMPLETE_STUDY = "incomplete_study", _("Incomplete study")
    LATE_SERIES = "late_series", _("Series arrived after completion")
    WEBHOOK_FAILED = "webhook_failed", _("Webhook delivery failed")
    NOTIFICATION_FAILED = "notification_failed", _("Notification delivery failed")
    ESCALATED_TO_COORDINATOR = "escalated_coordinator", _("Escalated to the coordinator")
    NO_COVERAGE = "no_coverage", _("No on-call line covers the case")
    ULTRASOUND_RECEIVED = "ultrasound_received", _("Ultrasound study received (not read remotely)")
    IMAGE_QUALITY = "image_quality", _("Image quality")
    NETWORK_OUTAGE = "network_outage", _("Network outage")
    OTHER = "other", _("Other")


class Severity(models.TextChoices):
    INFO = "info", _("information")
    WARNING = "warning", _("warning")
    CRITICAL = "critical", _("critical")


class TechnicalIncident(models.Model):
    at = models.DateTimeField(_("when"), db_index=True)
    kind = models.CharField(_("kind"), max_length=30, choices=IncidentKind.choices, db_index=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.WARNING)
    source = models.CharField(_("source"), max_length=20, default="manual")  # gateway|routing|api|manual
    establishment = models.ForeignKey("regions.Establishment", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="incidents", verbose_name=_("establishment"))
    case = models.ForeignKey("worklist.Case", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="incidents", verbose_name=_("case"))
    study = models.ForeignKey("studies.Study", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="incidents", verbose_name=_("study"))
    summary = models.CharField(_("summary"), max_length=300)
    details = models.JSONField(_("details"), default=dict, blank=True)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    verbose_name=_("reported by"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("technical incident")
        verbose_name_plural = _("technical incidents")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"


class TeleActRecord(models.Model):
    """The legal record of one tele-act, frozen when the report is signed (DOMAIN.md, 004 §2.5).

    ``snapshot`` is the JSON document of ``apps.traceability.selectors.teleact_record_build`` at freezing
    time and ``sha256`` its digest; later acts (addenda) are shown live beside it, never written into it.
    """

    case = models.OneToOneField("worklist.Case", on_delete=models.PROTECT, related_name="teleact_record",
                                verbose_name=_("case"))
    frozen_at = models.DateTimeField(_("frozen at"))
    snapshot = models.JSONField(_("snapshot"))
    sha256 = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("tele-act record")
        verbose_name_plural = _("tele-act records")
        ordering = ["-frozen_at"]

    def __str__(self) -> str:
        return f"tele-act record of case #{self.case_id}"
