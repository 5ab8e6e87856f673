"""Demo accounts: the users of ``fixtures/demo_region.json``, their memberships and authorised sites.

Called by apps.regions.demo (DEMO_EXTENSIONS) once the mesh exists; idempotent (an existing username is kept).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.hashers import make_password

from apps.accounts.models import Membership, User


def _date(v: str | None) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


def load(spec: dict[str, Any], ctx: Any) -> None:
    # One hash for every demo account: PBKDF2 is slow on purpose, and the demo has 30 accounts.
    demo_hash = make_password(spec["password"])
    for u in spec["users"]:
        user = User.objects.filter(username=u["username"]).first()
        if user is None:
            user = User(username=u["username"], first_name=u["first_name"], last_name=u["last_name"],
                        role=u["role"], email=u.get("email", ""), rpps=u.get("rpps", ""), phone=u.get("phone", ""),
                        birth_date=_date(u.get("birth_date")), subspecialties=u.get("subspecialties", []),
                        volunteers_over_60=u.get("volunteers_over_60", False),
                        region=ctx.region if u.get("region") else None,
                        is_staff=u["role"] in ("ars_coordinator", "establishment_admin"))
            user.password = demo_hash
            user.save()
            if u["role"] == "ars_coordinator":
                _grant_coordinator_permissions(user)
            if u.get("establishment"):
                Membership.objects.create(user=user, establishment=ctx.establishments[u["establishment"]])
            if u.get("authorised_sites"):
                user.authorised_sites.set([ctx.establishments[k] for k in u["authorised_sites"]])
            ctx.count("users", True)
        ctx.users[u["username"]] = user


def _grant_coordinator_permissions(user: User) -> None:
    """A coordinator administers the mesh, rosters and routing of their region in the admin."""
    from django.contrib.auth.models import Group, Permission

    group, created = Group.objects.get_or_create(name="ARS coordinators")
    if created or not group.permissions.exists():
        group.permissions.set(Permission.objects.filter(content_type__app_label__in=[
            "regions", "accounts", "rosters", "routing", "traceability", "dashboards", "audit", "api", "studies",
            "worklist"]).exclude(codename__startswith="delete_audit"))
    user.groups.add(group)
