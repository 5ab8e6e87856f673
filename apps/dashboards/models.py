"""Steering data the ARS keeps by hand: the risk register and the training sessions.

Indicators themselves are not stored: ``apps.dashboards.selectors`` computes them from cases,
events and rosters by database aggregation.
"""

from __future__ import annotations

import datetime as dt

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
    preventive_action = models.TextField(_("preventive action"), blank=True)
    owner = models.CharField(_("owner"), max_length=200, blank=True)
    due_date = models.DateField(_("due date"), null=True, blank=True)
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
