"""The kernel's database behaviour: aware UTC times everywhere, and readers that never wait."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tilfreds.db import Database
from tilfreds.people.models import Suppression
from tilfreds.runtime import Runtime


def test_times_come_back_aware_and_in_utc(rt: Runtime) -> None:
    oslo = timezone(timedelta(hours=1))
    with rt.db.unit_of_work() as session:
        session.add(
            Suppression(
                phone_index="x" * 64,
                source="t",
                created_at=datetime(2026, 11, 25, 10, 0, tzinfo=oslo),
            )
        )
    with rt.db.read_only() as session:
        stored = session.execute(select(Suppression.created_at)).scalar_one()
    assert stored == datetime(2026, 11, 25, 9, 0, tzinfo=UTC) and stored.tzinfo == UTC


def test_naive_times_are_refused(rt: Runtime) -> None:
    with pytest.raises(Exception, match="naive datetime"), rt.db.unit_of_work() as session:
        session.add(Suppression(phone_index="y" * 64, source="t", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_a_reader_does_not_wait_for_an_open_writer(rt: Runtime) -> None:
    with rt.db.unit_of_work() as writer:
        writer.add(Suppression(phone_index="z" * 64, source="t", created_at=rt.clock.now()))
        writer.flush()  # the writer now holds the write lock until it commits
        with rt.db.read_only() as reader:  # a waiting reader would fail: "database is locked"
            seen = reader.execute(select(Suppression)).scalars().all()
        assert seen == []  # and it does not see uncommitted work


def _protocol_trace(db: Database, tmp_path: Path, work: Callable[[], object]) -> list[str]:
    """The messages (type and text) the client sent to PostgreSQL during ``work``, by libpq's own
    trace; ``db`` has one pooled connection, so every session of ``work`` uses the traced one."""
    with db.read_only() as session:
        conn = session.connection().connection.dbapi_connection
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        conn.pgconn.trace(out.fileno())  # type: ignore[union-attr]
        try:
            work()
        finally:
            conn.pgconn.untrace()  # type: ignore[union-attr]
    fields = [line.split("\t") for line in trace.read_text().splitlines()]
    return [f"{f[3]} {f[4].strip()}" for f in fields if len(f) > 4 and f[1] == "F"]


def _write_then_fail(db: Database, rt: Runtime, mark: str) -> None:
    """A unit of work that writes a row, then fails: it must leave nothing behind."""
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        session.add(Suppression(phone_index=mark * 64, source="t", created_at=rt.clock.now()))
        session.flush()
        raise RuntimeError("the unit of work fails after writing")


def test_one_read_costs_one_round_trip_and_leaves_no_autocommit_behind(
    rt: Runtime, tmp_path: Path
) -> None:
    """The token check of every API request: one statement, no BEGIN or ROLLBACK of its own on
    PostgreSQL; the pooled connection goes back transactional, so a later unit of work that
    fails still leaves nothing behind."""
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite has no round trips; one_read is read_only there")
    db = Database(rt.db.url, session_info=rt.db.session_info, pool_size=1)

    def read_then_fail() -> None:
        with db.one_read() as session:
            session.execute(select(Suppression.id)).all()
        _write_then_fail(db, rt, "w")

    try:
        sent = _protocol_trace(db, tmp_path, read_then_fail)
    finally:
        db.dispose()
    queries = [m for m in sent if m.startswith(("Query", "Parse"))]
    assert "SELECT suppressions.id" in queries[0]  # the read alone: no BEGIN before it
    assert queries[1].startswith("Query") and "BEGIN" in queries[1]  # then a real transaction
    assert queries[-1] == 'Query "ROLLBACK"'
    with rt.db.read_only() as session:
        assert session.execute(select(Suppression)).first() is None


def test_one_row_costs_one_round_trip_and_leaves_no_autocommit_behind(
    rt: Runtime, tmp_path: Path
) -> None:
    """The token check of every API request as it runs now: the statement alone on the driver
    (no BEGIN, no ROLLBACK), its row returned; the pooled connection goes back transactional."""
    if rt.db.dialect != "postgresql":
        assert rt.db.one_row(select(Suppression.id), {}) is None  # read_only there
        return
    db = Database(rt.db.url, session_info=rt.db.session_info, pool_size=1)
    found: list[object] = []

    def read_then_fail() -> None:
        found.append(db.one_row(select(Suppression.id), {}))
        found.append(db.one_row(select(func.count()).select_from(Suppression), {}))
        _write_then_fail(db, rt, "v")

    try:
        sent = _protocol_trace(db, tmp_path, read_then_fail)
    finally:
        db.dispose()
    assert found == [None, (0,)]
    queries = [m for m in sent if m.startswith(("Query", "Parse"))]
    assert "SELECT suppressions.id" in queries[0] and "count" in queries[1]  # alone: no BEGIN
    assert queries[2].startswith("Query") and "BEGIN" in queries[2]  # then a real transaction
    assert queries[-1] == 'Query "ROLLBACK"'
    with rt.db.read_only() as session:
        assert session.execute(select(Suppression)).first() is None
