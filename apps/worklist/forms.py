"""Forms of the clinical web app: input checks only; the rules live in the services."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.validators import validate_ins
from apps.worklist.identity import identity_errors
from apps.worklist.models import Pregnancy, Sex, Urgency
from apps.worklist.services import CaseInput


class CaseRequestForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    patient_birth_name = forms.CharField(label=_("Birth name"), max_length=100)
    patient_used_name = forms.CharField(label=_("Used name"), max_length=100, required=False)
    patient_first_names = forms.CharField(label=_("First names (birth certificate)"), max_length=200)
    # No sex chosen in advance: a default would be sent unchecked for every patient of the other sex.
    patient_sex = forms.ChoiceField(label=_("Sex"), choices=[("", _("– choose –")), *Sex.choices])
    patient_birth_date = forms.DateField(label=_("Date of birth"), widget=forms.DateInput(attrs={"type": "date"}))
    patient_birth_place = forms.CharField(label=_("Place of birth (INSEE code)"), max_length=5, required=False)
    patient_ins = forms.CharField(label=_("INS number (when known)"), max_length=15, required=False,
                                  validators=[validate_ins])
    local_patient_id = forms.CharField(label=_("Local patient id (IPP)"), max_length=64, required=False)
    accession_number = forms.CharField(label=_("Accession number"), max_length=64, required=False)
    urgency = forms.ChoiceField(label=_("Urgency"), choices=Urgency.choices, initial=Urgency.URGENT)
    modality_code = forms.ChoiceField(label=_("Modality"))
    exam = forms.CharField(label=_("Exam"), max_length=200)
    clinical_context = forms.CharField(label=_("Clinical context"), widget=forms.Textarea(attrs={"rows": 3}),
                                       required=False)
    clinical_question = forms.CharField(label=_("Question asked"), widget=forms.Textarea(attrs={"rows": 2}))
    contrast_allergy = forms.BooleanField(label=_("Known contrast allergy"), required=False)
    renal_function = forms.CharField(label=_("Renal function (eGFR / creatinine)"), max_length=100, required=False)
    pregnancy = forms.ChoiceField(label=_("Pregnancy"), choices=Pregnancy.choices, initial=Pregnancy.NOT_APPLICABLE)
    patient_informed = forms.BooleanField(label=_("Patient informed of the remote interpretation"), required=False)
    opposes_telemedicine = forms.BooleanField(label=_("Patient opposes tele-medicine"), required=False)
    opposes_data_sharing = forms.BooleanField(label=_("Patient opposes data sharing"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from apps.regions.models import Modality

        modality_code = cast(forms.ChoiceField, self.fields["modality_code"])  # fields are typed as Field
        modality_code.choices = [(m.code, f"{m.code} – {m.label}") for m in Modality.objects.order_by("code")]
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)
        self.fields["patient_birth_date"].widget.attrs["max"] = timezone.localdate().isoformat()

    def clean(self) -> dict[str, Any]:
        super().clean()  # returns cleaned_data, but typed optional in the stubs (an override may return None)
        data = self.cleaned_data
        # The service applies the same rule (apps.worklist.identity) to the API: same messages.
        for field, messages in identity_errors(
                sex=data.get("patient_sex", ""), birth_date=data.get("patient_birth_date"),
                birth_place=data.get("patient_birth_place", ""), ins=data.get("patient_ins", ""),
                today=timezone.localdate()).items():
            if field not in self.errors:
                for message in messages:
                    self.add_error(field, message)
        if data.get("opposes_telemedicine"):
            return data  # the service refuses with its message
        if not data.get("patient_informed"):
            self.add_error("patient_informed", _("The patient must be informed of the remote interpretation "
                                                 "(or of the reason they could not be)."))
        return data

    def case_input(self) -> CaseInput:
        d = self.cleaned_data
        return CaseInput(**{k: v for k, v in d.items() if k != "idempotency_key"})


class ValidationForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", _("Accept")), ("refuse", _("Refuse")),
                                          ("ask_info", _("Ask for information"))])
    protocol = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
