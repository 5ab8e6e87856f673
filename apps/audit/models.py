"""Append-only audit trail of every read and change of patient data and configuration.

Rows are only ever inserted, by ``apps.audit.services.audit_record``, with no lock: each entry carries
``mac``, an HMAC-SHA256 under ``PDS_AUDIT_KEY`` of its own content and random ``uid`` (so a copied row is
refused by the unique constraint). Shortly after, the sealer (``audit_seal``, one at a time) chains the
entries in order: one ``AuditSeal`` per entry, with its position ``seq`` and the keyed chain hash up to it,
and appends checkpoints (count and head) to a file outside the database. ``manage.py verify_audit`` checks
every MAC, the chain and the checkpoints. See docs/security.md for what this does and does not protect.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    READ = "read", _("read")
    CREATE = "create", _("create")
    UPDATE = "update", _("update")
    DELETE = "delete", _("delete")
    EXPORT = "export", _("export")
    LOGIN = "login", _("login")
    LOGIN_FAILED = "login_failed", _("failed login")
    LOGOUT = "logout", _("logout")
    SECURITY = "security", _("security event")
    RECEIVE = "receive", _("received (DICOM)")
    ASSIGN = "assign", _("assign")
    SIGN = "sign", _("sign")
    QUERY = "query", _("query (DICOM)")
    RETRIEVE = "retrieve", _("retrieve (DICOM)")


class AuditEntry(models.Model):
    at = models.DateTimeField(_("when"), db_index=True)
    actor_id = models.BigIntegerField(_("user id"), null=True, blank=True, db_index=True)
    actor_username = models.CharField(_("user"), max_length=150, blank=True)
    actor_role = models.CharField(_("role"), max_length=30, blank=True)
    establishment_id = models.BigIntegerField(_("establishment id"), null=True, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=20, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True, db_index=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    patient_data = models.BooleanField(_("patient data"), default=False, db_index=True)
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    ip = models.GenericIPAddressField(_("from address"), null=True, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    mac = models.CharField(max_length=64, editable=False)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action} {self.object_type}#{self.object_id}"


class AuditSeal(models.Model):
    """An entry's place in the sealed chain: ``chain_hash`` = HMAC(key, previous chain_hash, seq, entry id,
    entry mac). Written only by the sealer, in ``seq`` order without gaps; never updated."""

    entry = models.OneToOneField(AuditEntry, on_delete=models.PROTECT, related_name="seal")
    seq = models.BigIntegerField(unique=True)
    chain_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("audit seal")
        verbose_name_plural = _("audit seals")
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} -> entry {self.entry_id}"
