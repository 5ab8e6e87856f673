"""The coordinator manages the accounts of their region through the admin, and cannot raise their own rights or
act as someone else (issue 14, finding 3). Every escalation path is tried as an attacker would: by POSTing to
the admin pages as the demo coordinator, with the form the page shows plus the fields it should not take."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from apps.accounts.models import User
from apps.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "pds-demo-2026"


def _value(field: Any) -> Any:
    value = field.value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, list | tuple):
        return [str(v.pk if hasattr(v, "pk") else v) for v in value]
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def form_post_data(response: Any, **overrides: Any) -> dict[str, Any]:
    """The change form as the admin page shows it (fields, split date-times, inline management forms), with
    ``overrides`` added: what a browser would post, plus whatever an attacker adds."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        bound = form[name]
        widget_names = getattr(bound.field.widget, "widgets_names", None)
        value = _value(bound)
        if widget_names:  # SplitDateTimeWidget: name_0 (date), name_1 (time)
            parts = value.split(" ") if value else ["", ""]
            for suffix, part in zip(widget_names, parts, strict=False):
                data[f"{name}{suffix}"] = part
        elif value not in ("", []):
            data[name] = value
    for inline in response.context.get("inline_admin_formsets", []):
        management = inline.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management[name].value()
        for i, sub in enumerate(inline.formset.forms):
            for name in sub.fields:
                value = _value(sub[name])
                if value not in ("", []):
                    data[f"{inline.formset.prefix}-{i}-{name}"] = value
    data.update(overrides)
    return data


@pytest.fixture
def coordinator(demo: Any) -> User:
    return demo.users["coordinateur"]


@pytest.fixture
def admin_client(coordinator: User) -> Client:
    client = Client()
    client.force_login(coordinator)
    return client


def _change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def test_coordinator_cannot_make_themselves_superuser_staff_or_grant_permissions(admin_client: Client,
                                                                                 coordinator: User) -> None:
    page = admin_client.get(_change_url(coordinator))
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert f'name="{field}"' not in html
    every_group = Group.objects.create(name="Everything")
    every_group.permissions.set(Permission.objects.all())
    all_permissions = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    groups_before = set(coordinator.groups.values_list("pk", flat=True))
    response = admin_client.post(_change_url(coordinator), form_post_data(
        page, is_superuser="on", is_staff="on", groups=[str(every_group.pk)], user_permissions=all_permissions,
        first_name="Véro"))
    assert response.status_code == 302, response.content  # saved: the allowed change went through
    coordinator.refresh_from_db()
    assert coordinator.first_name == "Véro"
    assert not coordinator.is_superuser
    assert set(coordinator.groups.values_list("pk", flat=True)) == groups_before
    assert not coordinator.user_permissions.exists()


def test_coordinator_cannot_set_or_reset_another_persons_password(admin_client: Client, demo: Any) -> None:
    radiologist = demo.users["radiologue"]
    url = f"/admin/accounts/user/{radiologist.pk}/password/"
    assert admin_client.get(url).status_code == 403
    response = admin_client.post(url, {"password1": "Taken-over-2026!", "password2": "Taken-over-2026!",
                                       "usable_password": "true"})
    assert response.status_code == 403
    radiologist.refresh_from_db()
    assert radiologist.check_password(PASSWORD) and not radiologist.check_password("Taken-over-2026!")
    # Posting a password through the change form does nothing either.
    page = admin_client.get(_change_url(radiologist))
    assert "/password/" not in page.content.decode()
    admin_client.post(_change_url(radiologist), form_post_data(page, password="pbkdf2_sha256$1$x$y"))
    radiologist.refresh_from_db()
    assert radiologist.check_password(PASSWORD)
    refused = AuditEntry.objects.filter(action="access_refused", object_id=str(radiologist.pk)).latest("id")
    assert refused.actor_username == "coordinateur" and refused.details["action"] == "change_password"
    # …and cannot log in as the radiologist with a password of their choosing.
    response = Client().post("/accounts/login/", {"username": "radiologue", "password": "Taken-over-2026!"})
    assert response.status_code == 200 and "_auth_user_id" not in response.client.session


def test_coordinator_cannot_reach_another_persons_authenticator(admin_client: Client, coordinator: User,
                                                                demo: Any) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    radiologist = demo.users["radiologue"]
    device = TOTPDevice.objects.create(user=radiologist, name="phone", confirmed=True)
    # Even with django-otp's model permissions granted, the device pages are the superuser's.
    coordinator.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["otp_totp",
                                                                                            "otp_static"]))
    assert admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 403
    assert admin_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code in (403, 404)
    response = admin_client.post("/admin/otp_totp/totpdevice/add/", {
        "user": radiologist.pk, "name": "attacker", "key": "3132333435363738393031323334353637383930",
        "step": 30, "t0": 0, "digits": 6, "tolerance": 1, "drift": 0, "confirmed": "on",
        "throttling_failure_count": 0})
    assert response.status_code == 403
    assert admin_client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}).status_code == 403
    assert list(TOTPDevice.objects.filter(user=radiologist).values_list("name", flat=True)) == ["phone"]
    assert admin_client.get("/admin/otp_static/staticdevice/add/").status_code == 403


def test_coordinator_cannot_move_accounts_out_of_their_region_or_widen_their_own(admin_client: Client,
                                                                                coordinator: User,
                                                                                demo: Any) -> None:
    from apps.regions.models import Region

    other = Region.objects.create(code="OTH", name="Other region")
    radiologist = demo.users["radiologue"]
    page = admin_client.get(_change_url(radiologist))
    region_choices = [str(pk) for pk, _label in page.context["adminform"].form.fields["region"].choices if pk]
    assert str(other.pk) not in region_choices and str(demo.region.pk) in region_choices
    response = admin_client.post(_change_url(radiologist), form_post_data(page, region=str(other.pk)))
    assert response.status_code == 200 and "region" in response.context["adminform"].form.errors
    radiologist.refresh_from_db()
    assert radiologist.region_id != other.pk
    # Their own role and region are not theirs to change.
    page = admin_client.get(_change_url(coordinator))
    admin_client.post(_change_url(coordinator), form_post_data(page, region=str(other.pk), role="radiologist"))
    coordinator.refresh_from_db()
    assert coordinator.region_id == demo.region.pk and coordinator.role == "ars_coordinator"


def test_coordinator_sees_no_superuser_account(admin_client: Client, demo: Any) -> None:
    root = User.objects.create(username="root", is_superuser=True, is_staff=True, region=demo.region)
    assert admin_client.get(_change_url(root)).status_code == 302  # "does not exist" for the coordinator
    assert "root" not in admin_client.get("/admin/accounts/user/").content.decode()
    admin_client.post(f"/admin/accounts/user/{root.pk}/password/", {"password1": "x-Taken-2026!",
                                                                    "password2": "x-Taken-2026!"})
    root.refresh_from_db()
    assert not root.check_password("x-Taken-2026!")


def test_an_account_is_never_reverted_from_its_history(admin_client: Client, demo: Any) -> None:
    radiologist = demo.users["radiologue"]
    radiologist.is_superuser = True  # a past state the coordinator would like to bring back
    radiologist.save()
    privileged = radiologist.history.latest("history_id")
    radiologist.is_superuser = False
    radiologist.save()
    url = f"/admin/accounts/user/{radiologist.pk}/history/{privileged.history_id}/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert admin_client.post(url, form_post_data(page)).status_code == 403
    radiologist.refresh_from_db()
    assert not radiologist.is_superuser and radiologist.check_password(PASSWORD)


def test_coordinator_creates_accounts_in_their_region_with_no_privilege(admin_client: Client,
                                                                        coordinator: User) -> None:
    response = admin_client.post("/admin/accounts/user/add/", {
        "username": "nouveau.radiologue", "usable_password": "true", "password1": "Initial-pass-2026!",
        "password2": "Initial-pass-2026!", "is_superuser": "on", "is_staff": "on",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = User.objects.get(username="nouveau.radiologue")
    assert not created.is_superuser and not created.is_staff
    assert created.region_id == coordinator.region_id
    assert admin_client.get(_change_url(created)).status_code == 200


def test_superuser_keeps_the_full_form(demo: Any) -> None:
    root = User.objects.create_superuser(username="root", password="Root-pass-2026!")
    client = Client()
    client.force_login(root)
    radiologist = demo.users["radiologue"]
    html = client.get(_change_url(radiologist)).content.decode()
    assert 'name="is_superuser"' in html and 'name="groups"' in html
    assert client.get(f"/admin/accounts/user/{radiologist.pk}/password/").status_code == 200
