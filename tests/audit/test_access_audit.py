"""Audit entries for each kind of access: login/logout/failed login, web reads, admin changes; and the
configuration history (who changed an establishment or agreement, and what it was before)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.regions.models import Establishment


def test_login_logout_and_failed_login_are_audited(client, demo):
    assert client.post(reverse("accounts:login"), {"username": "coordinateur", "password": "wrong"}).status_code == 200
    failed = AuditEntry.objects.filter(action="login_failed").latest("id")
    assert failed.actor_username == "coordinateur" and failed.ip == "127.0.0.1"
    r = client.post(reverse("accounts:login"), {"username": "coordinateur", "password": "pds-demo-2026"})
    assert r.status_code == 302
    login = AuditEntry.objects.filter(action="login").latest("id")
    assert login.actor_username == "coordinateur" and login.actor_role == "ars_coordinator"
    client.post(reverse("accounts:logout"))
    assert AuditEntry.objects.filter(action="logout", actor_username="coordinateur").exists()


def _admin_form_data(response) -> dict:
    """The change form's current values, as the browser would post them back."""
    data: dict = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for bf in form:
            value = bf.value()
            if value is None or value is False:
                continue
            data[bf.html_name] = "on" if value is True else value
    return data


def test_admin_change_is_audited_and_in_history_with_previous_value(client, demo):
    coordinator = demo.users["coordinateur"]
    client.force_login(coordinator)
    site = demo.establishments["vierzon"]
    before = site.phone_24h
    url = reverse("admin:regions_establishment_change", args=[site.pk])
    data = _admin_form_data(client.get(url))
    data["phone_24h"] = "02 48 00 00 99"
    r = client.post(url, data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    entry = AuditEntry.objects.filter(action="update", object_type="regions.establishment").latest("id")
    assert entry.actor_username == "coordinateur" and entry.channel == "admin"
    assert "phone_24h" in entry.details["fields"]
    history = Establishment.history.filter(id=site.pk).order_by("history_date")
    latest = history.last()
    assert latest.history_user_id == coordinator.pk and latest.phone_24h == "02 48 00 00 99"
    delta = latest.diff_against(latest.prev_record)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("phone_24h", before, "02 48 00 00 99")]
    page = client.get(reverse("admin:regions_establishment_history", args=[site.pk]))
    assert page.status_code == 200 and coordinator.username in page.content.decode()
    old = client.get(reverse("admin:regions_establishment_simple_history",
                             args=[site.pk, latest.prev_record.history_id]))
    assert old.status_code == 200 and before in old.content.decode()


@pytest.mark.parametrize("model", ["agreement", "establishment"])
def test_history_pages_render(client, demo, model):
    from apps.regions.models import Agreement

    client.force_login(demo.users["coordinateur"])
    obj = Agreement.objects.first() if model == "agreement" else demo.establishments["vierzon"]
    assert client.get(reverse(f"admin:regions_{model}_history", args=[obj.pk])).status_code == 200
