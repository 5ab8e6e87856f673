"""People: one user model for every profile, with a role and establishment memberships.

A practitioner carries an RPPS number; a radiologist also a date of birth
(the over-60 rule), sub-specialties and the requesting sites they are
authorised to read for.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.validators import validate_rpps

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise  # stubs-only alias: str | lazy translation


class Role(models.TextChoices):
    ARS_COORDINATOR = "ars_coordinator", _("ARS coordinator")
    ESTABLISHMENT_ADMIN = "establishment_admin", _("Establishment administrator")
    EMERGENCY_PHYSICIAN = "emergency_physician", _("Emergency physician")
    RADIOLOGIST = "radiologist", _("Radiologist")
    RADIOGRAPHER = "radiographer", _("Radiographer")
    INTEGRATION = "integration", _("RIS integration (machine)")


class Subspecialty(models.TextChoices):
    NEURO = "neuro", _("Neuroradiology")
    PAEDIATRIC = "paediatric", _("Paediatric")
    MSK = "msk", _("Musculoskeletal")
    THORACIC = "thoracic", _("Thoracic")
    VASCULAR = "vascular", _("Vascular / interventional")
    ABDOMINAL = "abdominal", _("Abdominal")
    CARDIAC = "cardiac", _("Cardiac")


PRACTITIONER_ROLES = {Role.EMERGENCY_PHYSICIAN, Role.RADIOLOGIST}


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=30, choices=Role.choices, blank=True)
    region = models.ForeignKey("regions.Region", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="users", verbose_name=_("region"),
                               help_text=_("For ARS coordinators: the region they administer."))
    rpps = models.CharField(_("RPPS number"), max_length=11, blank=True, validators=[validate_rpps])
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    subspecialties = models.JSONField(_("sub-specialties"), default=list, blank=True)
    volunteers_over_60 = models.BooleanField(_("volunteers for on-call after 60"), default=False)
    authorised_sites = models.ManyToManyField("regions.Establishment", blank=True, related_name="authorised_readers",
                                              verbose_name=_("sites authorised to read for"))
    establishments = models.ManyToManyField("regions.Establishment", through="Membership", blank=True,
                                            related_name="members", verbose_name=_("establishments"))
    trained_on = models.DateField(_("platform training date"), null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def clean(self) -> None:
        super().clean()
        errors: dict[str, StrOrPromise] = {}
        if self.role == Role.RADIOLOGIST and not self.birth_date:
            errors["birth_date"] = _("A radiologist needs a date of birth (on-call rules after 60).")
        if self.role in PRACTITIONER_ROLES and not self.rpps:
            errors["rpps"] = _("A practitioner needs an RPPS number.")
        bad = [s for s in self.subspecialties or [] if s not in Subspecialty.values]
        if bad:
            errors["subspecialties"] = _("Unknown sub-specialties: %(s)s.") % {"s": ", ".join(bad)}
        if errors:
            raise ValidationError(errors)

    @property
    def primary_establishment_id(self) -> int | None:
        cached = getattr(self, "_primary_establishment_id", "unset")
        if cached == "unset":
            m = self.memberships.order_by("-is_primary", "pk").values_list("establishment_id", flat=True).first()
            self._primary_establishment_id = m
            return m
        return cached  # type: ignore[return-value]

    def age_on(self, day: dt.date) -> int | None:
        if not self.birth_date:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    @property
    def display_name(self) -> str:
        full = self.get_full_name()
        if self.role == Role.RADIOLOGIST or self.role == Role.EMERGENCY_PHYSICIAN:
            return f"Dr {full}" if full else self.username
        return full or self.username


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    establishment = models.ForeignKey("regions.Establishment", on_delete=models.CASCADE, related_name="memberships",
                                      verbose_name=_("establishment"))
    is_primary = models.BooleanField(_("primary"), default=True)
    job_title = models.CharField(_("job title"), max_length=100, blank=True)

    class Meta:
        unique_together = [("user", "establishment")]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.establishment}"
