"""Input and output shapes of the API. No rules here: services decide, serializers only convert."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.api.services import WEBHOOK_EVENT_NAMES
from apps.worklist.models import CaseStatus, Pregnancy, Sex, Urgency


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


class AssignmentSerializer(serializers.Serializer):
    state = serializers.CharField(source="assignment_state")
    radiologist = serializers.SerializerMethodField()
    line = serializers.SerializerMethodField()
    escalation_level = serializers.IntegerField()
    overflowed = serializers.BooleanField()
    assigned_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    claimed_by = serializers.SerializerMethodField()

    def get_radiologist(self, case: Any) -> str | None:
        return case.assigned_to.display_name if case.assigned_to_id else None

    def get_line(self, case: Any) -> str | None:
        return str(case.assigned_line) if case.assigned_line_id else None

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
    requested_at = serializers.DateTimeField()
    validated_at = serializers.DateTimeField(allow_null=True)
    images_complete_at = serializers.DateTimeField(allow_null=True)
    signed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)


class RequestInputSerializer(serializers.Serializer):
    patient_birth_name = serializers.CharField(max_length=100)
    patient_used_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    patient_first_names = serializers.CharField(max_length=200)
    patient_sex = serializers.ChoiceField(choices=Sex.choices)
    patient_birth_date = serializers.DateField()
    patient_birth_place = serializers.RegexField(r"^(\d[0-9AB]\d{3})?$", max_length=5, required=False,
                                                 allow_blank=True, default="")
    patient_ins = serializers.CharField(max_length=15, required=False, allow_blank=True, default="")
    local_patient_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    clinical_question = serializers.CharField(max_length=5000)
    clinical_context = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    modality = serializers.CharField(max_length=4, help_text="Modality code: CT, MR, XR (US is redirected).")
    exam = serializers.CharField(max_length=200)
    urgency = serializers.ChoiceField(choices=Urgency.choices, default=Urgency.URGENT)
    needed_subspecialty = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    contrast_allergy = serializers.BooleanField(required=False, default=False)
    renal_function = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    pregnancy = serializers.ChoiceField(choices=Pregnancy.choices, default=Pregnancy.NOT_APPLICABLE)
    patient_informed = serializers.BooleanField(required=False, default=False)
    opposes_telemedicine = serializers.BooleanField(required=False, default=False)
    opposes_data_sharing = serializers.BooleanField(required=False, default=False)
    accession_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate_modality(self, value: str) -> str:
        from apps.regions.models import Modality

        code = value.strip().upper()
        if not Modality.objects.filter(code=code).exists():
            raise serializers.ValidationError(
                f"Unknown modality. Choose among {', '.join(Modality.objects.values_list('code', flat=True))}.")
        return code


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class CaseEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
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
    study_datetime = serializers.DateTimeField(allow_null=True)
    num_series = serializers.IntegerField()
    num_instances = serializers.IntegerField()
    first_received_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
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
    signed_at = serializers.DateTimeField()


class ReportSerializer(serializers.Serializer):
    request = serializers.UUIDField(source="case.public_id")
    status = serializers.CharField()
    author = serializers.CharField(source="author.display_name")
    signed_by = serializers.SerializerMethodField()
    signed_at = serializers.DateTimeField(allow_null=True)
    indication = serializers.CharField()
    technique = serializers.CharField()
    findings = serializers.CharField()
    conclusion = serializers.CharField()
    critical_finding = serializers.BooleanField()
    content_sha256 = serializers.CharField()
    addenda = AddendumSerializer(many=True)

    def get_signed_by(self, report: Any) -> str | None:
        return report.signed_by.display_name if report.signed_by_id else None


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENT_NAMES), min_length=1,
                                   max_length=len(WEBHOOK_EVENT_NAMES))


class WebhookOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(help_text="HMAC secret, shown only in this response.")


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    event = serializers.CharField(source="event_type")
    request = serializers.UUIDField(source="case.public_id")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)


def _plausible_year(value: Any) -> Any:
    if value is not None and not 2000 <= value.year <= 2100:
        raise serializers.ValidationError("Give a date between the years 2000 and 2100.")
    return value


class OnDutyQuerySerializer(serializers.Serializer):
    site = serializers.IntegerField(min_value=1, max_value=2**62)
    modality = serializers.CharField(max_length=4)
    at = serializers.DateTimeField(required=False, validators=[_plausible_year])


class CoverageQuerySerializer(serializers.Serializer):
    at = serializers.DateTimeField(required=False, validators=[_plausible_year])
    week_start = serializers.DateField(required=False, validators=[_plausible_year])
    site = serializers.IntegerField(required=False, min_value=1, max_value=2**62)
