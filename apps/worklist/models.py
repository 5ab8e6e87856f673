"""The case: one interpretation request, from the physician's form (or a study that arrived alone)
to the signed report.

State is changed only by services (apps.worklist.services, apps.routing.services)
with compare-and-set updates where two actors race (claim, assignment).
Every stage carries its timestamp so turnaround is measured stage by stage.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.validators import validate_ins
from apps.worklist.timeline import event_text


class Urgency(models.TextChoices):
    VITAL = "vital", _("Vital emergency")
    URGENT = "urgent", _("Urgent")
    DEFERRED = "deferred", _("Deferred")


URGENCY_RANK = {Urgency.VITAL: 0, Urgency.URGENT: 1, Urgency.DEFERRED: 2}


class CaseStatus(models.TextChoices):
    AWAITING_VALIDATION = "awaiting_validation", _("Awaiting indication validation")
    INFO_REQUESTED = "info_requested", _("More information requested")
    REFUSED = "refused", _("Indication refused")
    ACCEPTED = "accepted", _("Accepted, awaiting images")
    AWAITING_READING = "awaiting_reading", _("Images complete, awaiting reading")
    IN_PROGRESS = "in_progress", _("Being read")
    REPORTED = "reported", _("Report signed")
    CANCELLED = "cancelled", _("Cancelled")
    REDIRECTED = "redirected", _("Redirected (ultrasound)")


OPEN_STATUSES = (CaseStatus.AWAITING_VALIDATION, CaseStatus.INFO_REQUESTED, CaseStatus.ACCEPTED,
                 CaseStatus.AWAITING_READING, CaseStatus.IN_PROGRESS)


class Origin(models.TextChoices):
    WEB = "web", _("Web form")
    API = "api", _("RIS API")
    DICOM = "dicom", _("Study received without request")


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    UNKNOWN = "U", _("Unknown")


class Pregnancy(models.TextChoices):
    NOT_APPLICABLE = "na", _("Not applicable")
    NO = "no", _("No")
    POSSIBLE = "possible", _("Possible")
    YES = "yes", _("Yes")


class AssignmentState(models.TextChoices):
    UNASSIGNED = "unassigned", _("Unassigned")
    OFFERED = "offered", _("Offered, awaiting acknowledgement")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    COORDINATOR = "coordinator", _("Escalated to the coordinator")
    # On a private provider's line, no radiologist named: the first of its readers to claim it takes it.
    QUEUED = "queued", _("In a private provider's queue")


class Case(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey("regions.Establishment", on_delete=models.PROTECT, related_name="cases",
                             verbose_name=_("requesting site"))
    origin = models.CharField(_("origin"), max_length=10, choices=Origin.choices, default=Origin.WEB)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="requested_cases", verbose_name=_("requesting physician"))
    radiographer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="acquired_cases", verbose_name=_("radiographer"))
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)

    # Patient identity (INS fields).
    patient_birth_name = models.CharField(_("birth name"), max_length=100)
    patient_used_name = models.CharField(_("used name"), max_length=100, blank=True)
    patient_first_names = models.CharField(_("first names (birth)"), max_length=200)
    patient_sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    patient_birth_date = models.DateField(_("date of birth"))
    patient_birth_place = models.CharField(_("place of birth (INSEE code)"), max_length=5, blank=True)
    patient_ins = models.CharField(_("INS number"), max_length=15, blank=True, validators=[validate_ins])
    local_patient_id = models.CharField(_("local patient id (IPP)"), max_length=64, blank=True, db_index=True)

    # Clinical request.
    clinical_context = models.TextField(_("clinical context"), blank=True)
    clinical_question = models.TextField(_("question asked"))
    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices, default=Urgency.URGENT,
                               db_index=True)
    modality = models.ForeignKey("regions.Modality", on_delete=models.PROTECT, verbose_name=_("modality"))
    exam = models.CharField(_("exam"), max_length=200)
    needed_subspecialty = models.CharField(_("sub-specialty needed"), max_length=20, blank=True)
    contrast_allergy = models.BooleanField(_("contrast allergy"), default=False)
    renal_function = models.CharField(_("renal function (eGFR / creatinine)"), max_length=100, blank=True)
    pregnancy = models.CharField(_("pregnancy"), max_length=10, choices=Pregnancy.choices,
                                 default=Pregnancy.NOT_APPLICABLE)
    patient_informed = models.BooleanField(_("patient informed of tele-medicine"), default=False)
    opposes_telemedicine = models.BooleanField(_("patient opposes tele-medicine"), default=False)
    opposes_data_sharing = models.BooleanField(_("patient opposes data sharing"), default=False)
    accession_number = models.CharField(_("accession number"), max_length=64, blank=True, db_index=True)

    status = models.CharField(_("status"), max_length=20, choices=CaseStatus.choices,
                              default=CaseStatus.AWAITING_VALIDATION, db_index=True)
    # Validation of indication and protocol.
    protocol = models.TextField(_("protocol"), blank=True)
    validation_note = models.TextField(_("validation note / refusal reason"), blank=True)
    validated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="validated_cases", verbose_name=_("validated by"))

    # Routing state (written by apps.routing.services only).
    assignment_state = models.CharField(_("assignment"), max_length=15, choices=AssignmentState.choices,
                                        default=AssignmentState.UNASSIGNED, db_index=True)
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="assigned_cases", verbose_name=_("assigned radiologist"))
    assigned_line = models.ForeignKey("rosters.OnCallLine", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="cases", verbose_name=_("on-call line"))
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    escalation_due_at = models.DateTimeField(_("escalation due at"), null=True, blank=True, db_index=True)
    overflowed = models.BooleanField(_("overflowed to provider"), default=False)
    # Reading lock (claim): exactly one reader.
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="claimed_cases", verbose_name=_("claimed by"))
    late_images = models.BooleanField(_("images arrived after the case was taken"), default=False)
    # Justification after acquisition: the images came before the indication was validated (or with no
    # request). Recorded, never blocking an emergency's reading (apps.worklist.justification).
    acquired_before_validation = models.BooleanField(_("images acquired before the indication was validated"),
                                                     default=False)

    # Stage timestamps (UTC).
    requested_at = models.DateTimeField(_("requested at"), db_index=True)
    validated_at = models.DateTimeField(_("validated at"), null=True, blank=True)
    images_complete_at = models.DateTimeField(_("images complete at"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    acquired_at = models.DateTimeField(_("acquisition logged at"), null=True, blank=True)
    signed_at = models.DateTimeField(_("report signed at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("report delivered at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(fields=["site", "idempotency_key"], name="case_unique_idempotency_key",
                                    condition=models.Q(idempotency_key__isnull=False)),
        ]
        indexes = [models.Index(fields=["site", "requested_at"]), models.Index(fields=["status", "urgency"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.modality_id} {self.exam} ({self.site})"

    @property
    def validation_note_text(self) -> str:
        """The note in the reader's language when the platform wrote it (the ultrasound redirection)."""
        return event_text(self.validation_note)

    @property
    def patient_display(self) -> str:
        """Birth name, first names, used name when there is one (INS identity traits), date of birth."""
        name = f"{self.patient_birth_name.upper()} {self.patient_first_names}".strip()
        used = self.patient_used_name.strip().upper()
        if used and used != self.patient_birth_name.strip().upper():
            name = _("%(name)s, used name %(used_name)s") % {"name": name, "used_name": used}
        return f"{name} ({self.patient_birth_date:%d/%m/%Y})"


class ReportStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SIGNED = "signed", _("Signed")


class Report(models.Model):
    """A signed report is immutable: corrections are addenda."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="report")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reports")
    template = models.CharField(_("template"), max_length=50, blank=True)
    indication = models.TextField(_("indication"), blank=True)
    technique = models.TextField(_("technique"), blank=True)
    findings = models.TextField(_("findings"), blank=True)
    conclusion = models.TextField(_("conclusion"), blank=True)
    critical_finding = models.BooleanField(_("critical finding"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=ReportStatus.choices, default=ReportStatus.DRAFT)
    draft_saved_at = models.DateTimeField(_("draft saved at"), null=True, blank=True)
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="signed_reports")
    content_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")

    def __str__(self) -> str:
        return f"Report of case #{self.case_id} ({self.status})"


class Addendum(models.Model):
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField(_("text"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    signed_at = models.DateTimeField(_("signed at"))

    class Meta:
        ordering = ["signed_at"]
        verbose_name = _("addendum")
        verbose_name_plural = _("addenda")

    def __str__(self) -> str:
        return f"Addendum {self.pk} to report {self.report_id}"


class CriticalFindingCall(models.Model):
    """The call to the requesting physician for a critical finding: who, when, acknowledged."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="critical_calls")
    called_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    physician_name = models.CharField(_("physician reached"), max_length=200)
    called_at = models.DateTimeField(_("called at"))
    acknowledged = models.BooleanField(_("acknowledged by the physician"), default=False)
    note = models.TextField(_("note"), blank=True)
    # The physician's own confirmation, from the request's status page (apps.worklist.services.delivery);
    # left unconfirmed past the delay, routing alerts the radiologist and the coordinator once (alerted_at).
    confirmed_at = models.DateTimeField(_("confirmed by the physician at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name=_("confirmed by"))
    alerted_at = models.DateTimeField(_("unconfirmed alert sent at"), null=True, blank=True)

    def __str__(self) -> str:
        return f"Critical call on case #{self.case_id} to {self.physician_name}"


class ExpertRequestStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CANCELLED = "cancelled", _("Cancelled")


class ExpertRequest(models.Model):
    """Second-level expertise: the case goes to a sub-specialty line with a question."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="expert_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    line = models.ForeignKey("rosters.OnCallLine", on_delete=models.PROTECT, related_name="expert_requests")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="expert_requests_received")
    question = models.TextField(_("question"))
    opinion = models.TextField(_("opinion"), blank=True)
    status = models.CharField(max_length=10, choices=ExpertRequestStatus.choices, default=ExpertRequestStatus.OPEN)
    requested_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    subspecialty = models.CharField(_("sub-specialty"), max_length=20, blank=True)
    # The opinion is due by then (urgency of the case); past it, routing escalates to the coordinator once.
    due_at = models.DateTimeField(_("due at"), null=True, blank=True, db_index=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)

    def __str__(self) -> str:
        return f"Expert request {self.pk} on case #{self.case_id}"


class CaseEventKind(models.TextChoices):
    REQUESTED = "requested", _("Request submitted")
    VALIDATED = "validated", _("Indication accepted, protocol set")
    REFUSED = "refused", _("Indication refused")
    INFO_REQUESTED = "info_requested", _("More information requested")
    INFO_PROVIDED = "info_provided", _("Information provided")
    REDIRECTED = "redirected", _("Redirected to ultrasound referral")
    IMAGES_COMPLETE = "images_complete", _("Images complete")
    LATE_IMAGES = "late_images", _("Late series received")
    ACQUIRED_BEFORE_VALIDATION = "acquired_before_validation", _("Images acquired before validation")
    ASSIGNED = "assigned", _("Assigned")
    QUEUED = "queued", _("Queued for a private provider")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    DECLINED = "declined", _("Declined")
    HANDED_BACK = "handed_back", _("Handed back")
    ESCALATED = "escalated", _("Escalated")
    NOTIFIED = "notified", _("Notification sent")
    CLAIMED = "claimed", _("Claimed for reading")
    RELEASED = "released", _("Released")
    OPENED = "opened", _("Opened")
    REPORT_SIGNED = "report_signed", _("Report signed")
    ADDENDUM = "addendum", _("Addendum signed")
    CRITICAL_CALL = "critical_call", _("Critical finding call logged")
    EXPERT_REQUESTED = "expert_requested", _("Expert opinion requested")
    EXPERT_ANSWERED = "expert_answered", _("Expert opinion given")
    CANCELLED = "cancelled", _("Cancelled")
    DELIVERED = "delivered", _("Report delivered")
    REPORT_READ = "report_read", _("Report read by the requesting site")
    ACQUIRED = "acquired", _("Acquisition logged")
    CRITICAL_CONFIRMED = "critical_confirmed", _("Critical finding confirmed by the physician")
    CRITICAL_UNCONFIRMED = "critical_unconfirmed", _("Critical finding not confirmed in time")
    EXPERT_OVERDUE = "expert_overdue", _("Expert opinion overdue")
    INCIDENT = "incident", _("Technical incident")
    PRIOR_RETRIEVED = "prior_retrieved", _("Prior study retrieved")
    PRIOR_RETRIEVAL_FAILED = "prior_retrieval_failed", _("Prior study retrieval failed")


class DeliveryChannel(models.TextChoices):
    WEB = "web", _("web page")
    PDF = "pdf", _("PDF download")
    API = "api", _("RIS API")


class ReportReceipt(models.Model):
    """The signed report reached someone of the requesting site: one row per reader and channel (the first
    time), written by ``apps.worklist.services.delivery`` only. ``reader_key`` is ``user:<id>`` for a person,
    ``api-key:<id>`` for an integration (the RIS fetching it; a webhook only announces it)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="receipts")
    channel = models.CharField(_("channel"), max_length=10, choices=DeliveryChannel.choices)
    reader_key = models.CharField(max_length=60)
    reader_label = models.CharField(_("reader"), max_length=200)
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+", verbose_name=_("reader"))
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("report receipt")
        verbose_name_plural = _("report receipts")
        ordering = ["at", "pk"]
        constraints = [models.UniqueConstraint(fields=["case", "channel", "reader_key"],
                                               name="report_receipt_once_per_reader_channel")]

    def __str__(self) -> str:
        return f"{self.channel} receipt of case #{self.case_id} by {self.reader_label}"


class CaseEvent(models.Model):
    """Timeline of a case as the users see it (status page, tele-act record)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=40, choices=CaseEventKind.choices, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    message = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} on case #{self.case_id}"

    @property
    def text(self) -> str:
        """The stored English sentence in the reader's language (apps.worklist.timeline)."""
        return event_text(self.message)


class ReportTemplate(models.Model):
    """A report skeleton the editor offers for an exam: the coordinator writes them in the admin.

    The report's four sections are Indication (pre-filled from the request's question), Technique,
    Findings ("Résultats") and Conclusion; a template fills the last three. The editor picks the first
    active template, by ``order``, whose modality matches and one of whose keywords occurs in the exam's
    wording (apps.worklist.report_templates)."""

    key = models.SlugField(_("key"), max_length=50, unique=True)
    label = models.CharField(_("label"), max_length=200)
    modality = models.CharField(_("modality code"), max_length=4, blank=True,
                                help_text=_("CT, MR, XR…; empty: any modality."))
    keywords = models.CharField(_("keywords"), max_length=500, blank=True,
                                help_text=_("Comma-separated words looked for in the exam's wording "
                                            "(lower case); empty: the modality's default template."))
    technique = models.TextField(_("technique"), blank=True)
    findings = models.TextField(_("findings"), blank=True)
    conclusion = models.TextField(_("conclusion"), blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=100)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["order", "key"]
        verbose_name = _("report template")
        verbose_name_plural = _("report templates")

    def __str__(self) -> str:
        return self.label

    @property
    def keyword_list(self) -> list[str]:
        return [k.strip().lower() for k in self.keywords.split(",") if k.strip()]


# The priors' rows live with their code (apps.worklist.priors); imported here so that Django registers them.
from apps.worklist.priors.models import PriorQuery, PriorStudy  # noqa: E402, F401
