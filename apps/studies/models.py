"""Studies received by DICOM: study -> series -> instance, with the files on disk.

An Instance row exists only once its bytes are durably on disk (temp name,
fsync, rename). A SOP Instance UID is stored once; a conflicting copy goes to
QuarantinedInstance, never over the original.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class StudyStatus(models.TextChoices):
    """Where a study stands. ``ROUTED`` says that routing actually took its case in hand: a radiologist was
    offered it (or holds it), or it was escalated to the regional coordinator. Sending the routing message is
    not that (the worker may be down, routing may fail): a complete study stays ``COMPLETE``, awaiting
    assignment, until then; ``routing_enqueued_at`` records the message."""

    RECEIVING = "receiving", _("Receiving")
    COMPLETE = "complete", _("Complete, awaiting assignment")
    ROUTED = "routed", _("Routed: case assigned or escalated to the coordinator")
    NOT_ROUTED = "not_routed", _("Stored, not routed (ultrasound)")
    PRIOR = "prior", _("Prior study retrieved for a case (not routed)")


class Study(models.Model):
    study_uid = models.CharField(_("Study Instance UID"), max_length=64, unique=True)
    site = models.ForeignKey("regions.Establishment", on_delete=models.PROTECT, related_name="studies",
                             verbose_name=_("sending site"))
    calling_ae = models.CharField(_("sender AE title"), max_length=16, blank=True)
    case = models.ForeignKey("worklist.Case", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="studies", verbose_name=_("case"))
    status = models.CharField(_("status"), max_length=12, choices=StudyStatus.choices,
                              default=StudyStatus.RECEIVING, db_index=True)
    patient_name = models.CharField(_("patient name"), max_length=200, blank=True)
    patient_id = models.CharField(_("patient id"), max_length=64, blank=True, db_index=True)
    patient_id_issuer = models.CharField(_("issuer of patient id"), max_length=64, blank=True)
    other_patient_ids = models.JSONField(_("other patient ids"), default=list, blank=True)
    patient_birth_date = models.DateField(_("patient birth date"), null=True, blank=True)
    patient_sex = models.CharField(_("patient sex"), max_length=1, blank=True)
    accession_number = models.CharField(_("accession number"), max_length=64, blank=True, db_index=True)
    modality = models.CharField(_("modality"), max_length=16, blank=True)  # DICOM code(s) e.g. CT
    study_datetime = models.DateTimeField(_("study date/time"), null=True, blank=True)
    body_part = models.CharField(_("body part"), max_length=64, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    station_name = models.CharField(_("station"), max_length=64, blank=True)
    referring_physician = models.CharField(_("referring physician"), max_length=200, blank=True)
    num_series = models.PositiveIntegerField(_("series"), default=0)
    num_instances = models.PositiveIntegerField(_("instances"), default=0)
    first_received_at = models.DateTimeField(_("first image"), null=True, blank=True)
    # Not indexed on purpose: every image updates it, and an index on it would make each of those updates
    # rewrite all of the table's indexes instead of a heap-only (HOT) update. The reconciler finds the
    # few receiving studies through the status index.
    last_received_at = models.DateTimeField(_("last image"), null=True, blank=True)
    # An open association is delivering to this study until then: written with each image's own update
    # (no extra statement), renewed by the gateway process while the association stays open and keeps
    # sending, cleared when it is released or aborted; it runs out by itself if that process dies. A study is
    # not completed while it holds (the quiet period alone completed studies whose sender was still there,
    # held up by a database outage). Not indexed, like last_received_at.
    lease_until = models.DateTimeField(_("association delivering until"), null=True, blank=True)
    completed_at = models.DateTimeField(_("complete at"), null=True, blank=True)
    routing_enqueued_at = models.DateTimeField(_("routing enqueued at"), null=True, blank=True)
    late_series = models.BooleanField(_("late series after completion"), default=False)
    ultrasound = models.BooleanField(_("ultrasound (not routed)"), default=False)

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        ordering = ["-last_received_at"]

    def __str__(self) -> str:
        return f"{self.modality} {self.description or self.study_uid}"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(_("Series Instance UID"), max_length=64, unique=True)
    number = models.IntegerField(_("number"), null=True, blank=True)
    modality = models.CharField(_("modality"), max_length=16, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    body_part = models.CharField(_("body part"), max_length=64, blank=True)
    num_instances = models.PositiveIntegerField(_("instances"), default=0)
    received_after_completion = models.BooleanField(_("arrived after completion"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("series")
        verbose_name_plural = _("series")
        ordering = ["number", "pk"]

    def __str__(self) -> str:
        return f"{self.modality} #{self.number} {self.description}".strip()


class Instance(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(_("SOP Instance UID"), max_length=64, unique=True)
    sop_class_uid = models.CharField(_("SOP Class UID"), max_length=64)
    transfer_syntax_uid = models.CharField(_("transfer syntax"), max_length=64, blank=True)
    instance_number = models.IntegerField(_("instance number"), null=True, blank=True)
    path = models.CharField(_("file path (relative to storage root)"), max_length=300)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("instance")
        verbose_name_plural = _("instances")
        ordering = ["instance_number", "pk"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class QuarantinedInstance(models.Model):
    """A received copy that conflicts with a stored instance; the original is never touched."""

    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    study_uid = models.CharField(max_length=64, blank=True)
    calling_ae = models.CharField(max_length=16, blank=True)
    path = models.CharField(max_length=300)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    reason = models.CharField(max_length=300)
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = _("quarantined instance")
        verbose_name_plural = _("quarantined instances")

    def __str__(self) -> str:
        return f"{self.sop_instance_uid} ({self.reason})"


class ReconcilerWatch(models.Model):
    """One row: when the study reconciler (the gateway's loop, the beat task: whichever runs) last completed a
    pass, and since when it has been passing without interruption. The quiet period of a study is counted only
    while the reconciler watches: after an interruption (the database unreachable, or no reconciler running)
    nothing completes until the quiet period has elapsed again from the resumption, so that the senders still
    connected have the time to deliver what the outage held back."""

    observed_at = models.DateTimeField()
    since = models.DateTimeField()

    class Meta:
        verbose_name = _("study reconciler watch")

    def __str__(self) -> str:
        return f"watching since {self.since:%Y-%m-%d %H:%M:%S}"
