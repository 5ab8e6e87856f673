"""Finding 8 (issue 14): the audit chain could be shortened or rewritten undetected (deleting the last rows, or
editing a row and recomputing the hashes with the public functions, still verified "intact").

Each test seals a trail (entries MACed under PDS_AUDIT_KEY, chained by the sealer, checkpointed to the file),
tampers with it as one attacker of docs/security.md's threat model would, and expects verify_audit to say so.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.models import AuditEntry, AuditSeal
from apps.audit.selectors import audit_seal_lag_seconds, audit_verify
from apps.audit.services import audit_seal, chain_link, entry_mac
from tests.audit.support import delete_entries, entries, tamper

ATTACKER_KEY = "a-key-of-the-attackers-own-not-PDS_AUDIT_KEY-0123456789"


def _sealed(n: int) -> list[AuditEntry]:
    rows = entries(n)
    run = audit_seal(settle_seconds=0)
    assert run.sealed == n and run.checkpoint_written
    return rows


def _reasons() -> list[str]:
    return [p.reason for p in audit_verify().problems]


def _rewrite_from(entry: AuditEntry, username: str) -> None:
    """Edit one entry and recompute everything the public functions compute from it, under the key in force:
    its MAC, then the chain from its position onwards."""
    edited = AuditEntry.objects.get(pk=entry.pk)
    edited.actor_username = username
    tamper("UPDATE audit_auditentry SET actor_username = %s, mac = %s WHERE id = %s",
           [username, entry_mac(edited), entry.pk])
    seals = list(AuditSeal.objects.order_by("seq").values_list("seq", "entry_id", "entry__mac", "chain_hash"))
    start = next(i for i, (_, entry_id, _, _) in enumerate(seals) if entry_id == entry.pk)
    head = seals[start - 1][3] if start else "0" * 64
    for seq, entry_id, mac, _ in seals[start:]:
        head = chain_link(head, seq, entry_id, mac)
        tamper("UPDATE audit_auditseal SET chain_hash = %s WHERE seq = %s", [head, seq])


def test_a_sealed_trail_verifies(db, checkpoint_file: Path):
    _sealed(5)
    entries(1)
    report = audit_verify()
    assert report.intact, report.problems
    assert (report.entries, report.sealed, report.unsealed, report.checkpoints) == (6, 5, 1, 1)
    call_command("verify_audit")


def test_entries_younger_than_the_settle_delay_wait(db, settings):
    settings.PDS_AUDIT_SEAL_SETTLE_SECONDS = 3600
    entries(2)
    assert audit_seal().sealed == 0
    assert audit_seal(settle_seconds=0).sealed == 2
    assert audit_seal(settle_seconds=0).sealed == 0  # re-run: nothing left, no new checkpoint
    assert audit_verify().checkpoints == 1


def test_truncation_at_the_end_is_detected(db):
    rows = _sealed(6)
    delete_entries([r.pk for r in rows[-2:]])
    assert any("truncated" in r and "vouches for 6 sealed entries, the database has 4" in r for r in _reasons())
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("verify_audit")
    # Writing on does not cover it up: the chain passes position 6 again with another head.
    entries(3)
    audit_seal(settle_seconds=0)
    assert any("does not match the sealed chain at position 6" in r for r in _reasons())


def test_deleted_rows_in_the_middle_are_detected(db):
    rows = _sealed(6)
    delete_entries([rows[2].pk, rows[3].pk])
    assert any("gap: positions 3..4 are missing" in r for r in _reasons())


def test_edit_and_recompute_with_the_public_functions_is_detected(db, settings):
    # The attacker holds the database role, not the key: they recompute with a key of their own.
    rows = _sealed(5)
    real_key = settings.PDS_AUDIT_KEY
    settings.PDS_AUDIT_KEY = ATTACKER_KEY
    _rewrite_from(rows[2], "someone-else")
    settings.PDS_AUDIT_KEY = real_key
    report = audit_verify()
    assert rows[2].pk in {p.entry_id for p in report.problems}
    assert any(f"entry {rows[2].pk} was altered" in p.reason for p in report.problems)
    assert any("sealed chain broken at position 3" in p.reason for p in report.problems)


def test_rewrite_with_the_key_is_caught_by_the_checkpoints(db):
    # Someone with the key and the database but not the append-only checkpoint file: every MAC and link they
    # write is valid, and the file still remembers the head the chain had.
    rows = _sealed(5)
    _rewrite_from(rows[1], "someone-else")
    reasons = _reasons()
    assert reasons and all("does not match the sealed chain at position 5" in r for r in reasons), reasons


def test_entry_backdated_behind_the_sealer_is_reported(db):
    # With the key, a forged entry dated before the sealer's look-back window is never sealed: named.
    _sealed(2)
    forged = AuditEntry(at=timezone.now() - timedelta(days=2), action="read", object_type="worklist.case",
                        object_id="1")
    forged.mac = entry_mac(forged)
    forged.save(force_insert=True)
    assert audit_seal(settle_seconds=0).sealed == 0
    report = audit_verify()
    assert [p.entry_id for p in report.problems] == [forged.pk]
    assert "never sealed" in report.problems[0].reason


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_lines(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records))


def test_an_edited_checkpoint_file_is_detected(db, checkpoint_file: Path):
    # Truncate the trail, then lower the checkpoint to match: the line's MAC gives it away.
    rows = _sealed(4)
    delete_entries([rows[-1].pk])
    (record,) = _lines(checkpoint_file)
    seal = AuditSeal.objects.get(seq=3)
    record.update(count=3, head=seal.chain_hash, last_id=seal.entry_id)
    _write_lines(checkpoint_file, [record])
    assert _reasons() == ["checkpoint file line 1 was altered (its MAC does not match)"]


def test_a_checkpoint_line_removed_is_detected(db, checkpoint_file: Path):
    for _ in range(3):
        _sealed(2)
    records = _lines(checkpoint_file)
    assert [r["count"] for r in records] == [2, 4, 6]
    _write_lines(checkpoint_file, [records[0], records[2]])
    assert _reasons() == ["checkpoint file line 2 does not follow the line before it "
                          "(a checkpoint was removed or the lines reordered)"]


def test_a_missing_checkpoint_file_is_reported(db, checkpoint_file: Path):
    _sealed(2)
    checkpoint_file.unlink()
    assert any("no checkpoint file" in r for r in _reasons())


def test_a_line_cut_short_is_reported_and_the_next_checkpoint_starts_a_new_line(db, checkpoint_file: Path):
    _sealed(1)
    with checkpoint_file.open("ab") as fh:
        fh.write(b'{"count": 9')  # a write interrupted by a crash
    _sealed(1)
    report = audit_verify()
    # Reported (an auditor decides whether it was a crash), and the checkpoints either side still count.
    assert [p.reason for p in report.problems] == [
        "checkpoint file line 2 is not a checkpoint (altered or cut short)"]
    assert report.checkpoints == 2 and report.sealed == 2


def test_sealing_lag_is_reported(db, settings):
    settings.PDS_AUDIT_SEAL_SETTLE_SECONDS = 0
    entries(1)  # not sealed yet, as when beat is down
    assert audit_seal_lag_seconds() >= 0
    report = audit_verify()
    assert report.intact and report.unsealed == 1 and report.oldest_unsealed_age is not None
    call_command("verify_audit", max_lag=3600)
    with pytest.raises(CommandError, match="sealing lags"):
        call_command("verify_audit", max_lag=-1)
    audit_seal()
    assert audit_seal_lag_seconds() == 0.0
