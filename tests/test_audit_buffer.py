"""Entries are buffered in the session and appended just before the outermost commit: what a
rolled back savepoint or transaction recorded is never appended, and the head is locked last."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import statements
from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditEntry
from tilfreds.db import Database
from tilfreds.operators.models import ApiToken
from tilfreds.runtime import Runtime


def note(session: Session, rt: Runtime, what: str) -> None:
    audit.record(
        session, actor="system", action=f"test.{what}", subject_type="thing", subject_id=1,
        at=rt.clock.now(),
    )  # fmt: skip


def actions(rt: Runtime) -> list[str]:
    with rt.db.read_only() as session:
        query = select(AuditEntry.action).where(AuditEntry.action.like("test.%"))
        return list(session.execute(query.order_by(AuditEntry.seq)).scalars())


def test_entries_of_a_rolled_back_savepoint_are_dropped_and_the_rest_kept(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        note(session, rt, "before")
        with session.begin_nested():
            note(session, rt, "released")
        try:
            with session.begin_nested():
                note(session, rt, "rolled_back")
                with session.begin_nested():
                    note(session, rt, "inside_rolled_back")
                raise LookupError
        except LookupError:
            pass
        note(session, rt, "after")
    assert actions(rt) == ["test.before", "test.released", "test.after"]
    with rt.db.read_only() as session:
        assert audit.verify(session).ok


def test_a_rolled_back_transaction_appends_nothing(rt: Runtime) -> None:
    with pytest.raises(LookupError), rt.db.unit_of_work() as session:
        note(session, rt, "lost")
        session.flush()
        raise LookupError
    with rt.db.unit_of_work() as session:
        note(session, rt, "next")
    assert actions(rt) == ["test.next"]


def test_a_savepoint_still_open_at_commit_is_appended(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        session.begin_nested()  # never closed by its caller: the commit releases it
        note(session, rt, "in_open_savepoint")
    assert actions(rt) == ["test.in_open_savepoint"]


def test_the_head_is_the_last_lock_and_few_statements_append_a_batch(rt: Runtime) -> None:
    """Three statements (lock the head, insert the entries, move the head); on PostgreSQL the
    insert rides in the move as a CTE, so two."""
    with statements(rt.db) as seen, rt.db.unit_of_work() as session:
        for n in range(3):
            note(session, rt, f"n{n}")
        assert not any("audit" in s for s in seen)  # nothing until the commit
        session.add(
            ApiToken(name="t", role="admin", token_hash="h" * 64, created_at=rt.clock.now())
        )
    postgres = rt.db.dialect == "postgresql"
    if postgres:
        lock, move = seen[-2:]
        insert = move.split(") UPDATE audit_head")[0]
        assert move.startswith("WITH") and "INSERT INTO audit_log" in insert
        assert ") UPDATE audit_head" in move
    else:
        lock, insert, move = seen[-3:]
        assert insert.startswith("INSERT INTO audit_log") and move.startswith("UPDATE audit_head")
    assert lock.startswith("SELECT audit_head.seq, audit_head.mac")
    assert ("FOR UPDATE" in lock) == postgres
    assert insert.count("), (") == 2  # one multi-row INSERT for the three entries
    writes = [s for s in seen if s.startswith(("INSERT", "UPDATE"))]
    assert writes[0].startswith("INSERT INTO api_tokens")  # flushed before the head is locked
    assert actions(rt) == ["test.n0", "test.n1", "test.n2"]


def test_a_session_without_keys_refuses_to_record(rt: Runtime) -> None:
    bare = Database(rt.db.url)
    try:
        with pytest.raises(RuntimeError, match="no keys"), bare.unit_of_work() as session:
            note(session, rt, "unsealable")
    finally:
        bare.dispose()
