"""Input and output shapes of the API. No rules here: services decide, serializers only convert.

Inputs use the strict fields of apps.api.fields (a value is accepted exactly when the published schema allows
it); every time is rendered as RFC 3339 in UTC (UtcDateTimeField)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.api.fields import (
    FullDateField,
    ModalityField,
    QueryIntegerField,
    RecentDateField,
    RecentDateTimeField,
    StrictBooleanField,
    StrictChoiceField,
    StrictInputSerializer,
    TextField,
    UtcDateTimeField,
    WebhookUrlField,
)
from apps.api.services import WEBHOOK_EVENT_NAMES
from apps.worklist.models import CaseStatus, Pregnancy, Sex, Urgency
from apps.worklist.selectors import case_contact


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem document (application/problem+json)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="Field name -> list of messages.")


class EstablishmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    finess = serializers.CharField()
    kind = serializers.CharField()
    city = serializers.CharField()
    territory = serializers.CharField(source="territory.name")
    is_public = serializers.BooleanField()
    active = serializers.BooleanField()


class PatientSerializer(serializers.Serializer):
    birth_name = serializers.CharField(source="patient_birth_name")
    used_name = serializers.CharField(source="patient_used_name")
    first_names = serializers.CharField(source="patient_first_names")
    sex = serializers.CharField(source="patient_sex")
    birth_date = serializers.DateField(source="patient_birth_date")
    birth_place = serializers.CharField(source="patient_birth_place")
    ins = serializers.CharField(source="patient_ins")
    local_patient_id = serializers.CharField()


class ContactSerializer(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField()
    line = serializers.CharField(source="line_name")


class AssignmentSerializer(serializers.Serializer):
    state = serializers.CharField(source="assignment_state")
    label = serializers.SerializerMethodField(
        help_text="Who has the request, in words: \"Not yet assigned\" while nobody does.")
    contact = serializers.SerializerMethodField(
        help_text="The radiologist to call about the request (reading it, else assigned to it); null while nobody "
                  "is assigned.")
    radiologist = serializers.SerializerMethodField()
    line = serializers.SerializerMethodField()
    escalation_level = serializers.IntegerField()
    overflowed = serializers.BooleanField()
    assigned_at = UtcDateTimeField(allow_null=True)
    acknowledged_at = UtcDateTimeField(allow_null=True)
    claimed_by = serializers.SerializerMethodField()

    def get_label(self, case: Any) -> str:
        contact = case_contact(case)
        return contact.label if contact else ""

    @extend_schema_field(ContactSerializer(allow_null=True))
    def get_contact(self, case: Any) -> dict[str, Any] | None:
        contact = case_contact(case)
        return ContactSerializer(contact).data if contact and contact.name else None

    def get_radiologist(self, case: Any) -> str | None:
        return case.assigned_to.display_name if case.assigned_to_id else None

    def get_line(self, case: Any) -> str | None:
        # The line of the current assignment only: escalated to the coordinator or handed back, there is none.
        return str(case.assigned_line) if case.assigned_line_id and case.assigned_to_id else None

    def get_claimed_by(self, case: Any) -> str | None:
        return case.claimed_by.display_name if case.claimed_by_id else None


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    site = serializers.IntegerField(source="site_id")
    origin = serializers.CharField()
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    status_label = serializers.CharField(source="get_status_display")
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    modality = serializers.CharField(source="modality_id")
    exam = serializers.CharField()
    clinical_question = serializers.CharField()
    clinical_context = serializers.CharField()
    accession_number = serializers.CharField()
    patient = PatientSerializer(source="*")
    opposes_data_sharing = serializers.BooleanField()
    validation_note = serializers.CharField()
    assignment = AssignmentSerializer(source="*")
    requested_at = UtcDateTimeField()
    validated_at = UtcDateTimeField(allow_null=True)
    images_complete_at = UtcDateTimeField(allow_null=True)
    signed_at = UtcDateTimeField(allow_null=True)
    cancelled_at = UtcDateTimeField(allow_null=True)


# INSEE code of the place of birth: department (2 digits, 2A, 2B) and commune (3 digits), or nothing.
BIRTH_PLACE = "(?:[0-9][0-9AB][0-9]{3})?"
# The INS's shape (apps.core.validators.validate_ins): its key is checked by the model, its coherence with
# sex, date and place of birth by apps.worklist.identity (through case_create): a 422 naming the field if wrong.
INS_SHAPE = "(?:[123478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{8})?"


class RequestInputSerializer(StrictInputSerializer):
    patient_birth_name = TextField(max_length=100)
    patient_used_name = TextField(max_length=100, required=False, allow_blank=True, default="")
    patient_first_names = TextField(max_length=200)
    patient_sex = StrictChoiceField(choices=Sex.choices)
    patient_birth_date = FullDateField()
    patient_birth_place = TextField(max_length=5, required=False, allow_blank=True, default="", pattern=BIRTH_PLACE,
                                    pattern_message="An INSEE code: 2 digits (or 2A, 2B) then 3 digits.")
    patient_ins = TextField(max_length=15, required=False, allow_blank=True, default="", pattern=INS_SHAPE,
                            pattern_message="An INS number has 15 characters (13 + a 2-digit key).")
    local_patient_id = TextField(max_length=64, required=False, allow_blank=True, default="")
    clinical_question = TextField(max_length=5000)
    clinical_context = TextField(max_length=5000, required=False, allow_blank=True, default="")
    modality = ModalityField(help_text="Code of the modality catalogue (US is redirected, not read remotely).")
    exam = TextField(max_length=200)
    urgency = StrictChoiceField(choices=Urgency.choices, default=Urgency.URGENT)
    needed_subspecialty = TextField(max_length=20, required=False, allow_blank=True, default="")
    contrast_allergy = StrictBooleanField(required=False, default=False)
    renal_function = TextField(max_length=100, required=False, allow_blank=True, default="")
    pregnancy = StrictChoiceField(choices=Pregnancy.choices, default=Pregnancy.NOT_APPLICABLE)
    patient_informed = StrictBooleanField(required=False, default=False)
    opposes_telemedicine = StrictBooleanField(
        required=False, default=False, help_text="true is refused (422): the request is not made.")
    opposes_data_sharing = StrictBooleanField(required=False, default=False)
    accession_number = TextField(max_length=64, required=False, allow_blank=True, default="")


class CancelInputSerializer(StrictInputSerializer):
    reason = TextField(max_length=300, required=False, allow_blank=True, default="")


class CaseEventSerializer(serializers.Serializer):
    at = UtcDateTimeField()
    kind = serializers.CharField()
    message = serializers.CharField()


class SeriesSerializer(serializers.Serializer):
    series_uid = serializers.CharField()
    number = serializers.IntegerField(allow_null=True)
    modality = serializers.CharField()
    description = serializers.CharField()
    num_instances = serializers.IntegerField()
    received_after_completion = serializers.BooleanField()


class StudySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study_uid = serializers.CharField()
    status = serializers.CharField()
    modality = serializers.CharField()
    description = serializers.CharField()
    accession_number = serializers.CharField()
    patient_id = serializers.CharField()
    study_datetime = UtcDateTimeField(allow_null=True)
    num_series = serializers.IntegerField()
    num_instances = serializers.IntegerField()
    first_received_at = UtcDateTimeField(allow_null=True)
    completed_at = UtcDateTimeField(allow_null=True)
    late_series = serializers.BooleanField()
    matched = serializers.SerializerMethodField()
    request = serializers.SerializerMethodField()
    series = SeriesSerializer(many=True)

    def get_matched(self, study: Any) -> bool:
        return study.case_id is not None

    def get_request(self, study: Any) -> str | None:
        return str(study.case.public_id) if study.case_id else None


class AddendumSerializer(serializers.Serializer):
    text = serializers.CharField()
    author = serializers.CharField(source="author.display_name")
    signed_at = UtcDateTimeField()


class ReportSerializer(serializers.Serializer):
    request = serializers.UUIDField(source="case.public_id")
    status = serializers.CharField()
    author = serializers.CharField(source="author.display_name")
    signed_by = serializers.SerializerMethodField()
    signed_at = UtcDateTimeField(allow_null=True)
    indication = serializers.CharField()
    technique = serializers.CharField()
    findings = serializers.CharField()
    conclusion = serializers.CharField()
    critical_finding = serializers.BooleanField()
    content_sha256 = serializers.CharField()
    addenda = AddendumSerializer(many=True)

    def get_signed_by(self, report: Any) -> str | None:
        return report.signed_by.display_name if report.signed_by_id else None


class WebhookInputSerializer(StrictInputSerializer):
    # The syntax here, the egress policy in the service; the schema publishes both (apps.api.fields).
    url = WebhookUrlField(
        max_length=500,
        help_text="Where deliveries are POSTed: an https:// URL (plain http:// is refused unless the platform sets "
                  "PDS_WEBHOOK_ALLOW_HTTP). No credentials in the URL. Loopback, private, link-local, multicast, "
                  "reserved and cloud metadata addresses are refused (400 here when the URL names one; at each "
                  "delivery, every address the host resolves to is checked again). Redirects are not followed.")
    events = serializers.ListField(child=StrictChoiceField(choices=WEBHOOK_EVENT_NAMES), min_length=1,
                                   max_length=len(WEBHOOK_EVENT_NAMES))


class WebhookOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = UtcDateTimeField()


class WebhookCreatedSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(help_text="HMAC secret, shown only in this response.")


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    event = serializers.CharField(source="event_type")
    request = serializers.UUIDField(source="case.public_id")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = UtcDateTimeField()
    next_attempt_at = UtcDateTimeField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(
        help_text="Empty once delivered; \"HTTP <status>\" when the receiver answered outside 2xx; otherwise always "
                  "\"delivery failed: no HTTP response from the receiver\", whatever the cause (target refused by "
                  "policy, DNS, connection, TLS, timeout), which the platform keeps in its own log.")
    delivered_at = UtcDateTimeField(allow_null=True)


# Query parameters (apps.api.query refuses any other, an empty value and a repeated one). Dates and times are
# in the years routing and rosters cover (apps.api.fields.YEAR_MIN/YEAR_MAX), as the schema's pattern says.

class OnDutyQuerySerializer(serializers.Serializer):
    site = QueryIntegerField(min_value=1, max_value=2**62)
    modality = ModalityField()
    at = RecentDateTimeField(required=False)


class CoverageQuerySerializer(serializers.Serializer):
    at = RecentDateTimeField(required=False)
    week_start = RecentDateField(required=False)
    site = QueryIntegerField(required=False, min_value=1, max_value=2**62)


class TeleActQuerySerializer(serializers.Serializer):
    export = StrictChoiceField(choices=["json", "pdf", "fhir"], required=False, default="json",
                               help_text="Format, json by default.")


class ProviderClaimInputSerializer(StrictInputSerializer):
    radiologist_rpps = serializers.RegexField(
        r"^[0-9]{11}$", required=False, allow_blank=True, default="",
        help_text="With an API key: the RPPS number of the provider's radiologist who takes the case (the provider "
                  "dispatches internally). With a radiologist's session: ignored, the case is theirs.")



class ProviderClaimDocumentedSerializer(ProviderClaimInputSerializer):
    """The claim as the OpenAPI schema documents it: a machine (an API key) must name the radiologist; a
    radiologist's own session may leave the field out (``ProviderClaimInputSerializer`` accepts that)."""

    radiologist_rpps = serializers.RegexField(
        r"^[0-9]{11}$", help_text="The RPPS number of the provider's radiologist who takes the case (the provider "
                                   "dispatches internally). A radiologist's own session may leave it out.")
