"""The rows of the priors: one ``PriorQuery`` per case (has the site PACS been asked, with what outcome), one
``PriorStudy`` per study the PACS answered (its state from listed to retrieved)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class PriorQueryState(models.TextChoices):
    PENDING = "pending", _("To query")
    RUNNING = "running", _("Querying")
    DONE = "done", _("Queried")
    FAILED = "failed", _("Query failed")
    NOT_CONFIGURED = "not_configured", _("No PACS configured for query/retrieve")


class PriorQuery(models.Model):
    case = models.OneToOneField("worklist.Case", on_delete=models.CASCADE, related_name="prior_query")
    node = models.ForeignKey("regions.DicomNode", on_delete=models.SET_NULL, null=True, blank=True,
                             verbose_name=_("site PACS"))
    state = models.CharField(_("state"), max_length=16, choices=PriorQueryState.choices,
                             default=PriorQueryState.PENDING, db_index=True)
    matched_by = models.CharField(_("matched by"), max_length=16, blank=True)  # "ins" or "patient_id"
    error = models.CharField(_("error"), max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    requested_at = models.DateTimeField(_("requested at"))
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("prior studies query")
        verbose_name_plural = _("prior studies queries")

    def __str__(self) -> str:
        return f"{self.case_id}: {self.state}"


class PriorState(models.TextChoices):
    AVAILABLE = "available", _("Available on the site PACS")
    REQUESTED = "requested", _("Retrieval requested")
    RETRIEVING = "retrieving", _("Retrieving")
    RETRIEVED = "retrieved", _("Retrieved")
    FAILED = "failed", _("Retrieval failed")


class PriorStudy(models.Model):
    case = models.ForeignKey("worklist.Case", on_delete=models.CASCADE, related_name="priors")
    node = models.ForeignKey("regions.DicomNode", on_delete=models.SET_NULL, null=True, blank=True,
                             verbose_name=_("site PACS"))
    study_uid = models.CharField(_("Study Instance UID"), max_length=64, db_index=True)
    study_datetime = models.DateTimeField(_("study date"), null=True, blank=True)
    modalities = models.CharField(_("modalities"), max_length=64, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    body_part = models.CharField(_("body part"), max_length=64, blank=True)
    accession_number = models.CharField(_("accession number"), max_length=64, blank=True)
    num_instances = models.PositiveIntegerField(_("instances"), null=True, blank=True)
    relevant = models.BooleanField(_("relevant (retrieved automatically)"), default=False)
    state = models.CharField(_("state"), max_length=12, choices=PriorState.choices, default=PriorState.AVAILABLE,
                             db_index=True)
    study = models.ForeignKey("studies.Study", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="prior_links", verbose_name=_("stored study"))
    error = models.CharField(_("error"), max_length=300, blank=True)
    automatic = models.BooleanField(_("retrieved automatically"), default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("requested by"))
    listed_at = models.DateTimeField(_("listed at"))
    requested_at = models.DateTimeField(_("retrieval requested at"), null=True, blank=True)
    retrieved_at = models.DateTimeField(_("retrieved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("prior study")
        verbose_name_plural = _("prior studies")
        ordering = ["-study_datetime", "pk"]
        constraints = [models.UniqueConstraint(fields=["case", "study_uid"], name="prior_study_once_per_case")]

    def __str__(self) -> str:
        return f"{self.modalities} {self.description or self.study_uid}"
