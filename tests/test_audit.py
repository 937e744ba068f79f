"""The audit log is a hash chain; ``tilfreds audit verify`` finds changed and deleted entries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditEntry
from tilfreds.cli import app
from tilfreds.runtime import Runtime


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


def verify_cli(rt: Runtime) -> tuple[int, str]:
    env = {
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": rt.settings.secret_key,
        "TILFREDS_DATA_DIR": str(rt.settings.data_dir),
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
    }
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    return result.exit_code, result.output


def test_intact_chain_verifies(rt: Runtime) -> None:
    write_entries(rt, 5)
    code, output = verify_cli(rt)
    assert code == 0, output
    assert "intact" in output and "entries" in output


def test_entries_name_fields_never_values(rt: Runtime) -> None:
    write_entries(rt, 1)
    with rt.db.read_only() as session:
        entry = session.query(AuditEntry).filter(AuditEntry.action == "thing.done").one()
    assert entry.fields == ["a", "b"]


def _change_actor(seq: int) -> object:
    return update(AuditEntry).where(AuditEntry.seq == seq).values(actor="token:2")


def _change_fields(seq: int) -> object:
    return update(AuditEntry).where(AuditEntry.seq == seq).values(fields=[])


def _delete(seq: int) -> object:
    return delete(AuditEntry).where(AuditEntry.seq == seq)


@pytest.mark.parametrize(
    ("tamper", "which", "problem"),
    [
        (_change_actor, -3, "entry {seq} was changed"),
        (_change_fields, -4, "entry {seq} was changed"),
        (_delete, -3, "entry {seq} is missing"),
        (_delete, -1, "newest entries after {prev} are missing"),
    ],
    ids=["changed-actor", "changed-fields", "deleted-middle", "deleted-newest"],
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
    assert code == 1
    assert problem.format(seq=seq, prev=seq - 1) in " ".join(output.split())


def test_rewritten_hash_does_not_hide_a_change(rt: Runtime) -> None:
    write_entries(rt, 3)
    with rt.db.unit_of_work() as session:
        session.execute(
            update(AuditEntry).where(AuditEntry.seq == 2).values(action="other", hash="f" * 64)
        )
        result = audit.verify(session)
    assert not result.ok and "entry" in result.problem
