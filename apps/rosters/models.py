"""On-call lines and shifts: who holds which line, when.

A line is held by one establishment (its own radiologists), by several pivot
establishments sharing a pooled line, by a private provider, a radiologists'
group or a referral centre. It covers modalities and serves requesting sites.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.models import TimeStampedModel


class LineKind(models.TextChoices):
    SITE = "site", _("Site's own line")
    PIVOT = "pivot", _("Pivot establishment line")
    POOLED = "pooled", _("Pooled line (several pivots)")
    PROVIDER = "provider", _("Private provider")
    REFERRAL = "referral", _("Sub-specialty referral centre")


class OnCallLine(TimeStampedModel):
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, related_name="on_call_lines")
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=12, choices=LineKind.choices)
    holders = models.ManyToManyField("regions.Establishment", related_name="held_lines",
                                     verbose_name=_("holding establishments"))
    modalities = models.ManyToManyField("regions.Modality", verbose_name=_("modalities covered"))
    served_sites = models.ManyToManyField("regions.Establishment", related_name="serving_lines", blank=True,
                                          verbose_name=_("requesting sites served"))
    subspecialty = models.CharField(_("sub-specialty"), max_length=20, blank=True)
    overflow_threshold = models.FloatField(
        _("overflow load threshold"), null=True, blank=True,
        help_text=_("Weighted open cases per on-duty radiologist above which new cases overflow to the next target."))
    phone = models.CharField(_("line phone"), max_length=30, blank=True)
    active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("on-call line")
        verbose_name_plural = _("on-call lines")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ShiftKind(models.TextChoices):
    GARDE = "garde", _("On-site (garde)")
    ASTREINTE = "astreinte", _("At home (astreinte)")
    REMOTE = "remote", _("Remote reading duty")


class ShiftRole(models.TextChoices):
    PRIMARY = "primary", _("Primary")
    BACKUP = "backup", _("Backup")
    EXPERT = "expert", _("Sub-specialty expert")


class Shift(TimeStampedModel):
    line = models.ForeignKey(OnCallLine, on_delete=models.CASCADE, related_name="shifts", verbose_name=_("line"))
    radiologist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shifts",
                                    verbose_name=_("radiologist"))
    start = models.DateTimeField(_("start"), db_index=True)
    end = models.DateTimeField(_("end"), db_index=True)
    kind = models.CharField(_("kind"), max_length=10, choices=ShiftKind.choices, default=ShiftKind.GARDE)
    role = models.CharField(_("role"), max_length=10, choices=ShiftRole.choices, default=ShiftRole.PRIMARY)
    flags = models.JSONField(_("roster warnings"), default=list, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        ordering = ["start"]
        indexes = [models.Index(fields=["line", "start", "end"])]
        constraints = [models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="shift_end_after_start")]

    def __str__(self) -> str:
        return f"{self.radiologist} · {self.line} · {self.start:%Y-%m-%d %H:%M}"


class Intervention(TimeStampedModel):
    """Travel and intervention time during an at-home astreinte: work time, followed by 11 hours of rest
    (``apps.rosters.checks``). Recorded after the fact by the radiologist or the coordinator."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="interventions",
                              verbose_name=_("astreinte"))
    start = models.DateTimeField(_("start (leaving home)"))
    end = models.DateTimeField(_("end (back home)"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("recorded by"))

    class Meta:
        verbose_name = _("astreinte intervention")
        verbose_name_plural = _("astreinte interventions")
        ordering = ["start"]
        constraints = [models.CheckConstraint(condition=models.Q(end__gt=models.F("start")),
                                              name="intervention_end_after_start")]

    def __str__(self) -> str:
        return f"{self.shift.radiologist} · {self.start:%Y-%m-%d %H:%M}"


def default_provider_start() -> dt.time:
    """A callable, not a fixed time: see ``apps.regions.models.default_weekday_night_start``."""
    return dt.time(18, 0)


def default_provider_end() -> dt.time:
    return dt.time(8, 0)


class ProviderQueue(TimeStampedModel):
    """A private provider's contract as a destination in its own right: cases are queued to the provider's line
    without naming a radiologist, during its contracted hours (which may differ from the region's PDS window)
    and while fewer than ``capacity_per_hour`` cases were queued to it in the last hour; the provider's
    radiologists (or its own system, through the API) take each case within the SLA for its urgency, else the
    case moves on to the rule's next target. The hours are read by ``apps.rosters.contracts``."""

    line = models.OneToOneField(OnCallLine, on_delete=models.CASCADE, related_name="provider_queue",
                                limit_choices_to={"kind": LineKind.PROVIDER}, verbose_name=_("provider line"))
    weekday_start = models.TimeField(_("weeknight start"), default=default_provider_start)
    weekday_end = models.TimeField(_("weeknight end (next morning)"), default=default_provider_end)
    weekends = models.BooleanField(_("whole weekends"), default=True,
                                   help_text=_("Saturday and Sunday around the clock."))
    holidays = models.BooleanField(_("whole public holidays"), default=True,
                                   help_text=_("Public holidays of the requesting site around the clock."))
    capacity_per_hour = models.PositiveSmallIntegerField(_("capacity (cases per hour)"), default=6)
    sla_vital_minutes = models.PositiveSmallIntegerField(_("time to take a case, vital (min)"), default=10)
    sla_urgent_minutes = models.PositiveSmallIntegerField(_("time to take a case, urgent (min)"), default=30)
    sla_deferred_minutes = models.PositiveSmallIntegerField(_("time to take a case, deferred (min)"), default=120)
    active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("provider queue")
        verbose_name_plural = _("provider queues")
        constraints = [models.CheckConstraint(condition=models.Q(capacity_per_hour__gt=0),
                                              name="provider_queue_capacity_positive")]

    def __str__(self) -> str:
        return str(self.line)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.line_id and self.line.kind != LineKind.PROVIDER:
            raise ValidationError({"line": _("A provider queue belongs to a private provider's line.")})
        if self.weekday_start == self.weekday_end:
            raise ValidationError({"weekday_end": _("The weeknight window cannot start and end at the same time.")})
