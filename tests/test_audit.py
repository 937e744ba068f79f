"""The audit log is a keyed chain; ``tilfreds audit verify`` finds changed, inserted and deleted
entries, a chain recomputed without the key, and (against an anchor) one recomputed with it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from tests.conftest import KEYS
from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditEntry, AuditHead
from tilfreds.cli import app
from tilfreds.runtime import Runtime


@pytest.fixture(autouse=True)
def empty_log(rt: Runtime) -> None:
    """Start from an empty log (the fixture's default survey wrote one entry)."""
    with rt.db.unit_of_work() as session:
        session.execute(delete(AuditEntry))
        session.execute(update(AuditHead).values(seq=0, mac=audit.GENESIS))


def write_entries(rt: Runtime, n: int) -> None:
    with rt.db.unit_of_work() as session:
        for i in range(n):
            audit.record(
                session,
                actor="token:1",
                action="thing.done",
                subject_type="thing",
                subject_id=i,
                at=rt.clock.now(),
                fields=["b", "a"],
            )


def verify_cli(rt: Runtime, *args: str, **env: str) -> tuple[int, str]:
    base = {
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": rt.settings.secret_key,
        "TILFREDS_PREVIOUS_SECRET_KEYS": "",
        "TILFREDS_DATA_DIR": str(rt.settings.data_dir),
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
    }
    result = CliRunner().invoke(app, ["audit", "verify", *args], env=base | env)
    return result.exit_code, " ".join(result.output.split())


def head_of(rt: Runtime) -> str:
    with rt.db.read_only() as session:
        head = session.get(AuditHead, audit.HEAD_ID)
        assert head is not None
        return f"{head.seq}:{head.mac}"


def rewrite_chain(rt: Runtime, change: Callable[[list[AuditEntry]], None], base: Any) -> None:
    """What a forger with database access does: change entries, then recompute every MAC after
    them and the head, with ``base`` (a plain hash without the key, or the key itself)."""
    with rt.db.unit_of_work() as session:
        entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all())
        change(entries)
        prev = audit.GENESIS
        for e in entries:
            e.prev_mac = prev
            e.mac = prev = audit.seal(base, [getattr(e, c) for c in audit.CONTENT])
        session.execute(update(AuditHead).values(seq=entries[-1].seq, mac=prev))


def _second_by_other_actor(entries: list[AuditEntry]) -> None:
    entries[1].actor = "token:999"


def test_intact_chain_verifies_and_prints_its_head_last(rt: Runtime) -> None:
    write_entries(rt, 5)
    code, output = verify_cli(rt)
    assert code == 0, output
    assert "audit log intact: 5 entries" in output
    assert output.endswith(head_of(rt)) and head_of(rt).startswith("5:")


def test_an_empty_log_verifies(rt: Runtime) -> None:
    code, output = verify_cli(rt)
    assert code == 0 and output.endswith(f"0:{audit.GENESIS}"), output


def _change_actor(seq: int) -> object:
    return update(AuditEntry).where(AuditEntry.seq == seq).values(actor="token:2")


def _change_fields(seq: int) -> object:
    return update(AuditEntry).where(AuditEntry.seq == seq).values(fields=[])


def _change_key_id(seq: int) -> object:
    return update(AuditEntry).where(AuditEntry.seq == seq).values(key_id="00000000")


def _delete(seq: int) -> object:
    return delete(AuditEntry).where(AuditEntry.seq == seq)


@pytest.mark.parametrize(
    ("tamper", "which", "problem"),
    [
        (_change_actor, -3, "entry {seq} was changed"),
        (_change_fields, -4, "entry {seq} was changed"),
        (_change_key_id, -2, "entry {seq} is sealed with key 00000000, which is not configured"),
        (_delete, -3, "entry {seq} is missing"),
        (_delete, -1, "newest entries after {prev} are missing"),
    ],
    ids=["changed-actor", "changed-fields", "changed-key", "deleted-middle", "deleted-newest"],
)
def test_changed_or_deleted_entry_is_detected(
    rt: Runtime, tamper: Callable[[int], Any], which: int, problem: str
) -> None:
    write_entries(rt, 5)
    with rt.db.unit_of_work() as session:
        seqs = list(session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars())
        seq = seqs[which]
        session.execute(tamper(seq))
    code, output = verify_cli(rt)
    assert code != 0
    assert problem.format(seq=seq, prev=seq - 1) in output, output


def test_p12_chain_recomputed_without_the_key_is_detected(rt: Runtime) -> None:
    write_entries(rt, 5)
    rewrite_chain(rt, _second_by_other_actor, hashlib.sha256())
    code, output = verify_cli(rt)
    assert code == 1 and "entry 1 was changed" in output, output


def test_p12_chain_recomputed_with_a_wrong_key_is_detected(rt: Runtime) -> None:
    write_entries(rt, 5)
    rewrite_chain(rt, _second_by_other_actor, audit.mac_key(b"k" * 32))
    code, output = verify_cli(rt)
    assert code == 1 and "entry 1 was changed" in output, output


def test_p12_forgery_with_the_key_before_an_anchor_is_detected(rt: Runtime) -> None:
    write_entries(rt, 5)
    anchor = head_of(rt)
    write_entries(rt, 2)
    rewrite_chain(rt, _second_by_other_actor, audit.mac_key(KEYS.current.audit))
    assert verify_cli(rt)[0] == 0  # with the key, only an anchor kept elsewhere can tell
    code, output = verify_cli(rt, "--expect-head", anchor)
    assert code == 1 and "entry 5 is not the anchored one" in output, output


def test_p12_log_cut_back_before_an_anchor_is_detected(rt: Runtime) -> None:
    write_entries(rt, 5)
    anchor = head_of(rt)
    with rt.db.unit_of_work() as session:
        third = session.execute(select(AuditEntry).where(AuditEntry.seq == 3)).scalar_one()
        session.execute(delete(AuditEntry).where(AuditEntry.seq > 3))
        session.execute(update(AuditHead).values(seq=3, mac=third.mac))
    assert verify_cli(rt)[0] == 0
    code, output = verify_cli(rt, "--expect-head", anchor)
    assert code == 1 and "the anchored entry 5 is missing: the log ends at 3" in output, output


def test_an_anchor_that_still_holds_passes(rt: Runtime) -> None:
    write_entries(rt, 3)
    anchor = head_of(rt)
    write_entries(rt, 3)
    code, output = verify_cli(rt, "--expect-head", anchor)
    assert code == 0 and "entry 3 matches the anchor" in output, output


@pytest.mark.parametrize("anchor", ["5", "x:" + "0" * 64, "5:" + "g" * 64, "-1:" + "0" * 64])
def test_a_malformed_anchor_is_refused_clearly(rt: Runtime, anchor: str) -> None:
    code, output = verify_cli(rt, "--expect-head", anchor)
    assert code == 2 and "expected SEQ:MAC" in output and "Traceback" not in output


def test_entries_sealed_before_a_key_rotation_verify_with_the_previous_key(rt: Runtime) -> None:
    old_secret = rt.settings.secret_key
    write_entries(rt, 2)
    new_secret = base64.urlsafe_b64encode(b"n" * 32).decode()
    rotated = audit.Keys.from_master(b"n" * 32, [base64.urlsafe_b64decode(old_secret)])
    with rt.db.unit_of_work() as session:
        session.info[audit.KEYS] = rotated  # as a runtime built after the rotation has it
        write_entries_in(session, rt, 2)
    with rt.db.read_only() as session:
        key_ids = list(session.execute(select(AuditEntry.key_id).order_by(AuditEntry.seq)))
    assert [k for (k,) in key_ids] == [KEYS.current.id] * 2 + [rotated.current.id] * 2
    both = {"TILFREDS_SECRET_KEY": new_secret, "TILFREDS_PREVIOUS_SECRET_KEYS": old_secret}
    code, output = verify_cli(rt, **both)
    assert code == 0, output
    code, output = verify_cli(rt, TILFREDS_SECRET_KEY=new_secret)
    assert code == 2, output
    assert f"entry 1 is sealed with key {KEYS.current.id}, which is not configured" in output


def write_entries_in(session: Any, rt: Runtime, n: int) -> None:
    for i in range(n):
        audit.record(
            session,
            actor="system",
            action="thing.done",
            subject_type="thing",
            subject_id=i,
            at=rt.clock.now(),
        )


def test_a_missing_head_row_is_reported(rt: Runtime) -> None:
    write_entries(rt, 1)
    with rt.db.unit_of_work() as session:
        session.execute(delete(AuditHead))
    code, output = verify_cli(rt)
    assert code == 1 and "the audit head row is missing" in output
    with pytest.raises(RuntimeError, match="audit head row is missing"):
        write_entries(rt, 1)
