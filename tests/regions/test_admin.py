import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.regions.models import Establishment, Region, Territory


@pytest.fixture
def coordinator_client(client, demo):
    client.force_login(demo.users["coordinateur"])
    return client


@pytest.fixture
def other_region_site(demo):
    region = Region.objects.create(code="BRE", name="Bretagne")
    territory = Territory.objects.create(region=region, code="29", name="Finistère")
    from apps.core.validators import luhn_complete

    return Establishment.objects.create(name="CH de Morlaix", finess=luhn_complete("29000001"),
                                        kind="requesting", territory=territory)


@pytest.mark.parametrize("model", ["region", "territory", "poolingzone", "establishment", "agreement",
                                   "dicomnode", "modality"])
def test_admin_changelists_render(coordinator_client, model):
    resp = coordinator_client.get(reverse(f"admin:regions_{model}_changelist"))
    assert resp.status_code == 200


def test_admin_user_and_audit_pages_render(coordinator_client):
    assert coordinator_client.get(reverse("admin:accounts_user_changelist")).status_code == 200
    assert coordinator_client.get(reverse("admin:audit_auditentry_changelist")).status_code == 200


def test_coordinator_sees_only_their_region(coordinator_client, other_region_site, demo):
    other_url = reverse("admin:regions_establishment_change", args=[other_region_site.pk])
    resp = coordinator_client.get(reverse("admin:regions_establishment_changelist"))
    assert resp.status_code == 200 and other_url not in resp.content.decode()
    assert reverse("admin:regions_establishment_change", args=[demo.establishments["vierzon"].pk]) in resp.content.decode()
    resp = coordinator_client.get(reverse("admin:regions_establishment_change", args=[other_region_site.pk]))
    assert resp.status_code == 302  # Django admin redirects away from an object outside the queryset
    resp = coordinator_client.get(reverse("admin:regions_establishment_changelist") + "?q=Vierzon")
    assert "CH de Vierzon" in resp.content.decode()


def test_establishment_form_shows_clear_errors_and_edit_is_audited(coordinator_client, demo):
    site = demo.establishments["vierzon"]
    url = reverse("admin:regions_establishment_change", args=[site.pk])
    page = coordinator_client.get(url)
    assert page.status_code == 200 and "DICOM" in page.content.decode()
    data = {
        "name": site.name, "finess": "123", "kind": site.kind, "is_public": "on", "territory": site.territory_id,
        "active": "on", "address": "", "city": site.city, "latitude": "47.2", "longitude": "2.06",
        "phone_24h": "02 48 00 00 00", "subspecialties": "[]", "ultrasound_ages": "all",
        "devices-TOTAL_FORMS": "0", "devices-INITIAL_FORMS": "0",
        "dicom_nodes-TOTAL_FORMS": "0", "dicom_nodes-INITIAL_FORMS": "0",
    }
    resp = coordinator_client.post(url, data)
    assert resp.status_code == 200
    assert "9 characters" in resp.content.decode()
    data["finess"] = site.finess
    data["phone_24h"] = "02 48 99 99 99"
    before = AuditEntry.objects.count()
    resp = coordinator_client.post(url, data)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    site.refresh_from_db()
    assert site.phone_24h == "02 48 99 99 99"
    entry = AuditEntry.objects.order_by("-id").first()
    assert AuditEntry.objects.count() == before + 1
    assert entry.action == "update" and entry.actor_username == "coordinateur" and entry.channel == "admin"
    assert entry.object_type == "regions.establishment" and "phone_24h" in entry.details["fields"]
    # The history library keeps what it was before.
    assert site.history.count() >= 2
    assert site.history.all()[1].phone_24h != "02 48 99 99 99"


def test_admin_is_french_by_default(coordinator_client, settings):
    settings.LANGUAGE_CODE = "fr"
    resp = coordinator_client.get(reverse("admin:index"))
    page = resp.content.decode()
    assert "Déconnexion" in page or "Se déconnecter" in page
    assert "Maillage régional" in page or "Établissements" in page  # our own catalogue, not only Django's
