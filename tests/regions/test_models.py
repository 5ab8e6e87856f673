import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from apps.regions.models import Agreement, AgreementStatus, DicomNode, Establishment
from apps.regions.selectors import agreement_in_force, modality_for_dicom_code, nearest_ultrasound_referrals


@pytest.fixture
def sites(demo):
    return demo.establishments


def test_agreement_dates_validated(sites):
    a = Agreement(requesting=sites["vierzon"], partner=sites["tours"], valid_from=dt.date(2026, 5, 1),
                  valid_until=dt.date(2026, 4, 1), status=AgreementStatus.DRAFT)
    with pytest.raises(ValidationError) as exc:
        a.full_clean()
    assert "valid_until" in exc.value.message_dict


def test_signed_agreement_needs_signature_date(sites):
    a = Agreement(requesting=sites["vierzon"], partner=sites["tours"], valid_from=dt.date(2026, 5, 1),
                  status=AgreementStatus.SIGNED)
    with pytest.raises(ValidationError) as exc:
        a.full_clean()
    assert "signed_on" in exc.value.message_dict


def test_agreement_with_itself_refused(sites):
    a = Agreement(requesting=sites["vierzon"], partner=sites["vierzon"], valid_from=dt.date(2026, 5, 1))
    with pytest.raises(ValidationError):
        a.full_clean()


def test_agreement_in_force(sites):
    at = dt.datetime(2026, 11, 23, 22, tzinfo=dt.UTC)
    assert agreement_in_force(requesting_id=sites["vierzon"].pk, partner_id=sites["tours"].pk, modality_code="CT", at=at)
    # The private provider covers CT only.
    assert agreement_in_force(requesting_id=sites["vierzon"].pk, partner_id=sites["telerad"].pk, modality_code="CT", at=at)
    assert not agreement_in_force(requesting_id=sites["vierzon"].pk, partner_id=sites["telerad"].pk,
                                  modality_code="MR", at=at)
    # Northern pivots have no agreement with a southern site.
    assert not agreement_in_force(requesting_id=sites["vierzon"].pk, partner_id=sites["orleans"].pk,
                                  modality_code="CT", at=at)
    # The GIE agreement with Gien expired at the end of 2024; Pithiviers' is a draft.
    assert not agreement_in_force(requesting_id=sites["gien"].pk, partner_id=sites["gie"].pk, modality_code="CT", at=at)
    assert not agreement_in_force(requesting_id=sites["pithiviers"].pk, partner_id=sites["gie"].pk,
                                  modality_code="XR", at=at)
    # Before its start date, the provider agreement is not in force.
    before = dt.datetime(2025, 5, 1, 22, tzinfo=dt.UTC)
    assert not agreement_in_force(requesting_id=sites["vierzon"].pk, partner_id=sites["telerad"].pk,
                                  modality_code="CT", at=before)


def test_dicom_node_allow_list(sites):
    node = DicomNode(establishment=sites["vierzon"], ae_title="X", allowed_hosts="10.1.2.0/24, 192.168.7.9")
    assert node.allows("10.1.2.77")
    assert node.allows("192.168.7.9")
    assert not node.allows("10.1.3.1")
    assert not node.allows("not-an-ip")


def test_dicom_node_bad_cidr_message(sites):
    node = DicomNode(establishment=sites["vierzon"], ae_title="BAD_NODE", allowed_hosts="10.1.2.0/33")
    with pytest.raises(ValidationError) as exc:
        node.full_clean()
    assert "CIDR" in str(exc.value)


def test_finess_validated_on_establishment(sites):
    e = Establishment(name="X", finess="12", kind="requesting", territory=sites["vierzon"].territory)
    with pytest.raises(ValidationError) as exc:
        e.full_clean()
    assert "finess" in exc.value.message_dict


def test_modality_catalogue(demo):
    assert modality_for_dicom_code("DX").code == "XR"
    assert modality_for_dicom_code("CR").code == "XR"
    assert modality_for_dicom_code("CT").code == "CT"
    assert modality_for_dicom_code("US").teleradiology_eligible is False
    assert modality_for_dicom_code("PT") is None


def test_nearest_ultrasound_referral(sites):
    refs = nearest_ultrasound_referrals(sites["vierzon"])
    assert refs[0].name.startswith("Unité d'échographie d'urgence – Bourges")
    assert refs[0].within_bound and refs[0].travel_minutes <= 45
    # Nogent-le-Rotrou is far from every ultrasound centre of the demo region.
    far = nearest_ultrasound_referrals(sites["nogent"])
    assert not far[0].within_bound
    paed = nearest_ultrasound_referrals(sites["chinon"], paediatric=True)
    assert [r.paediatric for r in paed] == [True]
