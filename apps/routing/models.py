"""Routing configuration (rules and their ordered targets), the decisions taken and the notifications sent.

Invariants: a rule is scoped either to one requesting site or to a pooling
zone; every target line that serves a site of the scope has an agreement in
force between that site and one of the line's holders (``RoutingRule.clean``).
A decision is stored for every assignment attempt with the candidates and the
reasons; (case, attempt) is unique so that a case is never assigned twice by
two racing workers.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.models import TimeStampedModel
from apps.routing.notification_texts import notification_text

DAYTIME = "day"
PERIOD_KIND_CHOICES = [("weeknight", _("Weeknight")), ("weekend", _("Weekend")), ("holiday", _("Public holiday")),
                       (DAYTIME, _("Regular hours"))]
ALL_PERIOD_KINDS = [k for k, _label in PERIOD_KIND_CHOICES]


class ScopeKind(models.TextChoices):
    SITE = "site", _("Requesting site")
    ZONE = "zone", _("Pooling zone")


def _all_period_kinds() -> list[str]:
    return list(ALL_PERIOD_KINDS)


class RoutingRule(TimeStampedModel):
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, related_name="routing_rules")
    name = models.CharField(_("name"), max_length=200)
    scope_kind = models.CharField(_("scope"), max_length=4, choices=ScopeKind.choices, default=ScopeKind.ZONE)
    site = models.ForeignKey("regions.Establishment", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="routing_rules", verbose_name=_("requesting site"))
    zone = models.ForeignKey("regions.PoolingZone", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="routing_rules", verbose_name=_("pooling zone"))
    modalities = models.ManyToManyField("regions.Modality", verbose_name=_("modalities"))
    period_kinds = models.JSONField(
        _("periods"), default=_all_period_kinds,
        help_text=_("Any of weeknight, weekend, holiday (PDS calendar) and day (regular hours)."))
    priority = models.PositiveSmallIntegerField(_("priority"), default=100,
                                                help_text=_("Lower first among rules of the same scope."))
    delay_vital_minutes = models.PositiveSmallIntegerField(_("acknowledgement delay, vital (min)"), default=5)
    delay_urgent_minutes = models.PositiveSmallIntegerField(_("acknowledgement delay, urgent (min)"), default=15)
    delay_deferred_minutes = models.PositiveSmallIntegerField(_("acknowledgement delay, deferred (min)"), default=60)
    active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["region", "priority", "name"]

    def __str__(self) -> str:
        return self.name

    def scope_site_ids(self) -> list[int]:
        from apps.regions.models import Establishment, EstablishmentKind

        if self.scope_kind == ScopeKind.SITE:
            return [self.site_id] if self.site_id else []
        if not self.zone_id:
            return []
        return list(Establishment.objects.filter(territory__pooling_zones=self.zone_id,
                                                 kind=EstablishmentKind.REQUESTING).values_list("pk", flat=True))

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.scope_kind == ScopeKind.SITE and not self.site_id:
            errors["site"] = _("A rule scoped to a site names that site.")
        if self.scope_kind == ScopeKind.ZONE and not self.zone_id:
            errors["zone"] = _("A rule scoped to a pooling zone names that zone.")
        bad = [k for k in self.period_kinds or [] if k not in ALL_PERIOD_KINDS]
        if bad or not self.period_kinds:
            errors["period_kinds"] = _("Periods must be a non-empty list among %(k)s.") % {
                "k": ", ".join(ALL_PERIOD_KINDS)}
        if not errors and self.pk and not getattr(self, "_skip_target_check", False):
            problems = validate_rule_targets(self, list(self.targets.values_list("line_id", flat=True)))
            if problems:
                errors["__all__"] = " ".join(problems)
        if errors:
            raise ValidationError(errors)

    def delay_minutes(self, urgency: str) -> int:
        return {"vital": self.delay_vital_minutes, "urgent": self.delay_urgent_minutes}.get(
            urgency, self.delay_deferred_minutes)


class RoutingTarget(models.Model):
    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="targets")
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    line = models.ForeignKey("rosters.OnCallLine", on_delete=models.PROTECT, related_name="routing_targets",
                             verbose_name=_("on-call line"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("routing target")
        verbose_name_plural = _("routing targets")
        ordering = ["rule", "order", "pk"]
        constraints = [models.UniqueConstraint(fields=["rule", "line"], name="routing_target_unique_line")]

    def __str__(self) -> str:
        return f"{self.order}. {self.line}"


class Purpose(models.TextChoices):
    VALIDATION = "validation", _("Indication validation")
    READING = "reading", _("Reading")


class DecisionOutcome(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned to a radiologist")
    QUEUED = "queued", _("Queued for a private provider")
    COORDINATOR = "coordinator", _("Escalated to the coordinator")
    REFUSED = "refused", _("Not routed")


class RoutingDecision(models.Model):
    case = models.ForeignKey("worklist.Case", on_delete=models.CASCADE, related_name="routing_decisions")
    attempt = models.PositiveIntegerField(_("attempt"))
    at = models.DateTimeField(_("at"), db_index=True)
    trigger = models.CharField(_("trigger"), max_length=20)  # route | escalation | decline | hand_back | reconcile
    purpose = models.CharField(_("purpose"), max_length=12, choices=Purpose.choices)
    outcome = models.CharField(_("outcome"), max_length=12, choices=DecisionOutcome.choices)
    rule = models.ForeignKey(RoutingRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions")
    line = models.ForeignKey("rosters.OnCallLine", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="routing_decisions")
    radiologist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="routing_decisions")
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    overflowed = models.BooleanField(_("overflow"), default=False)
    candidates = models.JSONField(_("candidates considered"), default=list)
    reasons = models.JSONField(_("reasons"), default=list)
    decision_ms = models.FloatField(_("decision time (ms)"), default=0)

    class Meta:
        verbose_name = _("routing decision")
        verbose_name_plural = _("routing decisions")
        ordering = ["case", "attempt"]
        constraints = [models.UniqueConstraint(fields=["case", "attempt"], name="routing_decision_unique_attempt")]

    def __str__(self) -> str:
        return f"case #{self.case_id} attempt {self.attempt}: {self.get_outcome_display()}"


class Channel(models.TextChoices):
    IN_APP = "in_app", _("In-app (worklist)")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS / pager")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Delivered")
    FAILED = "failed", _("Failed")


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    case = models.ForeignKey("worklist.Case", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="notifications")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=30)  # assigned | escalated | coordinator | info
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    status = models.CharField(_("delivery"), max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING, db_index=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    sent_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "channel", "read_at"])]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.user}: {self.title}"

    @property
    def title_text(self) -> str:
        """The stored English title in the reader's language (apps.routing.notification_texts)."""
        return notification_text(self.title)

    @property
    def body_text(self) -> str:
        return notification_text(self.body)


def validate_rule_targets(rule: RoutingRule, line_ids: list[int], modality_codes: list[str] | None = None) -> list[str]:
    """Messages for every (site, target) pair of the rule lacking an agreement in force (empty: valid)."""
    from apps.regions.selectors import agreement_in_force
    from apps.rosters.models import OnCallLine

    if not line_ids:
        return []
    messages: list[str] = []
    site_ids = set(rule.scope_site_ids())
    if modality_codes is not None:
        rule_modalities = set(modality_codes)
    else:
        rule_modalities = set(rule.modalities.values_list("code", flat=True)) if rule.pk else set()
    for line in OnCallLine.objects.filter(pk__in=line_ids).prefetch_related("holders", "modalities", "served_sites"):
        served = {s.pk: s for s in line.served_sites.all()}
        concerned = [served[s] for s in site_ids if s in served]
        if not concerned:
            messages.append(f"The line « {line} » serves no site of this rule's scope.")
            continue
        codes = {m.code for m in line.modalities.all()} & (rule_modalities or {m.code for m in line.modalities.all()})
        holders = list(line.holders.all())
        for site in concerned:
            for code in sorted(codes):
                if not any(agreement_in_force(requesting_id=site.pk, partner_id=h.pk, modality_code=code)
                           for h in holders):
                    messages.append(f"No agreement in force between {site} and the holders of « {line} » "
                                    f"for {code}: this target is refused.")
    return messages
