"""Steering data the ARS keeps by hand (the risk register, the training sessions) and the daily
aggregates the indicators are read from.

Aggregates are derived data, never edited: ``apps.dashboards.services`` recomputes a closed Europe/Paris
day wholesale (every aggregate row of that day, for every region, plus its ``DashboardAggregateDay``
marker) in one transaction. A day without a marker is not aggregated and the selectors compute it live
from the cases, so a missing or late aggregate never changes a figure, only the time it takes. A case
belongs to the day of its ``requested_at`` on the Paris clock, as the panels' period filter does; an
interpretation (a signed report) to the day of its ``signed_at`` for the hourly distribution.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.utils.translation import gettext_lazy as _


class RiskNature(models.TextChoices):
    ORGANISATIONAL = "organisational", _("Organisational")
    TECHNICAL = "technical", _("Technical")
    HUMAN = "human", _("Human resources")
    CLINICAL = "clinical", _("Clinical")
    LEGAL = "legal", _("Legal / regulatory")
    FINANCIAL = "financial", _("Financial")


class RiskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    MITIGATING = "mitigating", _("Preventive action in progress")
    CLOSED = "closed", _("Closed")


def criticality_level(criticality: int) -> str:
    """Matrix band of impact x probability (1..16): low < 4 <= moderate < 8 <= high < 12 <= critical."""
    if criticality >= 12:
        return "critical"
    if criticality >= 8:
        return "high"
    if criticality >= 4:
        return "moderate"
    return "low"


class RiskEntry(models.Model):
    region = models.ForeignKey("regions.Region", on_delete=models.CASCADE, related_name="risks",
                               verbose_name=_("region"))
    risk = models.CharField(_("risk"), max_length=300)
    nature = models.CharField(_("nature"), max_length=20, choices=RiskNature.choices)
    impact = models.PositiveSmallIntegerField(_("impact (1-4)"),
                                              validators=[MinValueValidator(1), MaxValueValidator(4)])
    probability = models.PositiveSmallIntegerField(_("probability (1-4)"),
                                                   validators=[MinValueValidator(1), MaxValueValidator(4)])
    # Stored and computed by the database so the matrix and sorting aggregate in SQL.
    criticality = models.GeneratedField(expression=F("impact") * F("probability"),
                                        output_field=models.PositiveSmallIntegerField(), db_persist=True,
                                        verbose_name=_("criticality"))
    status = models.CharField(_("status"), max_length=12, choices=RiskStatus.choices, default=RiskStatus.OPEN)
    last_review = models.DateField(_("last review"))
    review_interval_days = models.PositiveSmallIntegerField(_("review interval (days)"), default=90)

    class Meta:
        verbose_name = _("risk")
        verbose_name_plural = _("risk register")
        ordering = ["-criticality", "risk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(impact__gte=1, impact__lte=4), name="risk_impact_1_4"),
            models.CheckConstraint(condition=models.Q(probability__gte=1, probability__lte=4),
                                   name="risk_probability_1_4"),
        ]

    def __str__(self) -> str:
        return self.risk

    @property
    def next_review(self) -> dt.date:
        return self.last_review + dt.timedelta(days=self.review_interval_days)

    def is_overdue(self, today: dt.date) -> bool:
        return self.status != RiskStatus.CLOSED and self.next_review < today


class RiskActionStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


RISK_ACTION_OPEN = (RiskActionStatus.PLANNED, RiskActionStatus.IN_PROGRESS)


class RiskAction(models.Model):
    """One preventive action of a risk, with its owner, due date and status (several per risk)."""

    risk = models.ForeignKey(RiskEntry, on_delete=models.CASCADE, related_name="actions", verbose_name=_("risk"))
    action = models.TextField(_("preventive action"))
    owner = models.CharField(_("owner"), max_length=200)
    due_date = models.DateField(_("due date"))
    status = models.CharField(_("status"), max_length=12, choices=RiskActionStatus.choices,
                              default=RiskActionStatus.PLANNED)
    done_on = models.DateField(_("done on"), null=True, blank=True)

    class Meta:
        verbose_name = _("preventive action")
        verbose_name_plural = _("preventive actions")
        ordering = ["due_date", "pk"]

    def __str__(self) -> str:
        return self.action[:80]

    def is_overdue(self, today: dt.date) -> bool:
        return self.status in RISK_ACTION_OPEN and self.due_date < today


class TrainingSession(models.Model):
    region = models.ForeignKey("regions.Region", on_delete=models.CASCADE, related_name="training_sessions",
                               verbose_name=_("region"))
    date = models.DateField(_("date"))
    profile = models.CharField(_("profile trained"), max_length=30)  # accounts.Role values
    people_trained = models.PositiveIntegerField(_("people trained"))
    establishment = models.ForeignKey("regions.Establishment", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="training_sessions", verbose_name=_("establishment"))
    topic = models.CharField(_("topic"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("training session")
        verbose_name_plural = _("training sessions")
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date} {self.profile} x{self.people_trained}"


# ------------------------------------------------------------------------------------ daily aggregates


class DashboardAggregateDay(models.Model):
    """Marker: the aggregates of this Paris day are complete (for every region) as of ``built_at``."""

    day = models.DateField(_("day (Europe/Paris)"), unique=True)
    built_at = models.DateTimeField(_("built at"))
    cases = models.PositiveIntegerField(_("cases requested that day"), default=0)

    class Meta:
        verbose_name = _("aggregated day")
        verbose_name_plural = _("aggregated days")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day} ({self.cases} cases)"


class _DayKey(models.Model):
    """The dimensions every panel filters on: day, requesting site (hence territory and region), modality
    and on-call line (an establishment administrator also sees the cases read on the lines it holds)."""

    day = models.DateField(db_index=True)
    site = models.ForeignKey("regions.Establishment", on_delete=models.CASCADE, related_name="+")
    modality = models.ForeignKey("regions.Modality", on_delete=models.CASCADE, related_name="+")
    # DO_NOTHING without a constraint: a deleted line leaves its days stale until they are rebuilt, as
    # its cases keep pointing to nothing (SET_NULL) -- the rebuild then files them under "no line".
    line = models.ForeignKey("rosters.OnCallLine", on_delete=models.DO_NOTHING, db_constraint=False, null=True,
                             related_name="+")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.day} site {self.site_id} {self.modality_id} line {self.line_id}"


HOURS = tuple(range(24))


class DailyCaseAggregate(_DayKey):
    """Case counts per (day, site, modality, line); ``requests_hNN`` counts requests made during hour NN
    of the Paris clock (the heatmap). Twenty-four integer columns rather than an array so that both
    PostgreSQL and the embedded SQLite demo sum them in the database. Urgency is not a key, only the
    emergency share of interpretations is kept (a third fewer rows to scan for a year): turnaround per
    urgency reads ``DailyTurnaround``. Changing ``selectors.EMERGENCY_URGENCIES`` needs a rebuild."""

    requests = models.PositiveIntegerField(default=0)
    interpretations = models.PositiveIntegerField(default=0)  # signed reports
    emergency_interpretations = models.PositiveIntegerField(default=0)  # of which vital or urgent requests
    assigned = models.PositiveIntegerField(default=0)
    overflowed = models.PositiveIntegerField(default=0)
    escalated = models.PositiveIntegerField(default=0)
    to_coordinator = models.PositiveIntegerField(default=0)
    for _h in HOURS:
        locals()[f"requests_h{_h:02d}"] = models.PositiveIntegerField(default=0)
    del _h

    class Meta:
        verbose_name = _("daily case aggregate")
        verbose_name_plural = _("daily case aggregates")


class DailyInterpretationHours(_DayKey):
    """Interpretations (signed reports) per (day of signature, site, modality, line); ``hNN`` counts those
    signed during hour NN of the Paris clock (the hourly distribution of interpretations)."""

    for _h in HOURS:
        locals()[f"h{_h:02d}"] = models.PositiveIntegerField(default=0)
    del _h

    class Meta:
        verbose_name = _("daily interpretations per hour")
        verbose_name_plural = _("daily interpretations per hour")


class DailyTurnaround(models.Model):
    """Exact stage durations of the cases of a (day, site, modality), packed as little-endian records
    ``(line id: int32, 0 = none; urgency index: uint8; five durations in seconds: float64, NaN = stage not
    reached)`` -- see ``apps.dashboards.turnaround``. Percentiles are not additive: storing the durations
    themselves (about 45 bytes a case) keeps the year's median and p90 exact, identical to
    ``percentile_cont`` over the cases, with no bucket error."""

    day = models.DateField(db_index=True)
    site = models.ForeignKey("regions.Establishment", on_delete=models.CASCADE, related_name="+")
    modality = models.ForeignKey("regions.Modality", on_delete=models.CASCADE, related_name="+")
    cases = models.PositiveIntegerField()
    records = models.BinaryField()

    class Meta:
        verbose_name = _("daily turnaround durations")
        verbose_name_plural = _("daily turnaround durations")

    def __str__(self) -> str:
        return f"{self.day} site {self.site_id} {self.modality_id}: {self.cases} cases"


class DailyShiftLoad(_DayKey):
    """Cases of the day assigned to a radiologist during one of their shifts (the shift may be on any
    line; the panel keeps the region's shifts that overlap its period)."""

    shift = models.ForeignKey("rosters.Shift", on_delete=models.CASCADE, related_name="+")
    cases = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("daily shift load")
        verbose_name_plural = _("daily shift loads")


class DailyCaseEventCount(_DayKey):
    """Declines and escalations recorded on the cases of the day, per actor."""

    kind = models.CharField(max_length=40)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                              null=True, related_name="+")
    events = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("daily case event count")
        verbose_name_plural = _("daily case event counts")
