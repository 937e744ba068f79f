"""Statements sent together in psycopg's pipeline mode (PostgreSQL): with ``commit``, the
transaction's COMMIT goes out with them and is answered in the same sync, so the session's own
commit afterwards finds nothing to send; a transaction with writes still due at its commit is
refused. (A failing statement rolling the whole window back: tests/test_worker_pipeline.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import bindparam, func, select, update

from tests.test_worker import Recording, intake
from tilfreds.audit import service as audit
from tilfreds.db import IntArray, TextArray
from tilfreds.invitations.models import Message
from tilfreds.pipelined import run_together
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker


@pytest.fixture
def commits(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[TransactionStatus]]:
    """The state of the transaction each time psycopg is asked to commit (IDLE: nothing to send)."""
    if rt.db.dialect != "postgresql":
        pytest.skip("only PostgreSQL pipelines")
    seen: list[TransactionStatus] = []
    real = psycopg.Connection.commit

    def commit(self: psycopg.Connection[object]) -> None:
        seen.append(TransactionStatus(self.pgconn.transaction_status))
        real(self)

    monkeypatch.setattr(psycopg.Connection, "commit", commit)
    yield seen


def test_the_commit_goes_out_with_the_statements(
    rt: Runtime, commits: list[TransactionStatus]
) -> None:
    intake(rt, 1)
    commits.clear()
    skipped = update(Message).values(skip_reason="test")
    with rt.db.unit_of_work() as session:
        counted = select(func.count(Message.id))
        assert run_together(session, [(skipped, {}), (counted, {})], commit=True) == [[], [(1,)]]
        with rt.db.read_only() as other:  # committed before the unit of work ends
            assert other.execute(select(Message.skip_reason)).scalar_one() == "test"
    assert commits == [TransactionStatus.IDLE]


def test_a_transaction_opened_and_committed_together_is_one_round_trip(
    rt: Runtime, commits: list[TransactionStatus], tmp_path: Path
) -> None:
    """BEGIN, the statements and COMMIT answered in one sync (psycopg, left to open it, waits
    for BEGIN's answer first): the protocol trace has one Sync and one ReadyForQuery."""
    intake(rt, 1)
    trace = tmp_path / "trace"
    with rt.db.unit_of_work() as session, trace.open("w") as out:
        driver = session.connection().connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        driver.pgconn.trace(out.fileno())
        counted = select(func.count(Message.id))
        run_together(session, [(counted, {}), (counted, {})], commit=True)
        driver.pgconn.untrace()
    sent = [line.split("\t")[1:4:2] for line in trace.read_text().splitlines()]
    assert sent.count(["F", "Sync"]) == 1 and sent.count(["B", "ReadyForQuery"]) == 1


def test_a_transaction_with_audit_entries_due_is_not_committed_in_a_pipeline(
    rt: Runtime, commits: list[TransactionStatus]
) -> None:
    with rt.db.unit_of_work() as session:
        audit.record(
            session, actor="test", action="test.done", subject_type="Thing", subject_id=1,
            at=rt.clock.now(),
        )  # fmt: skip
        with pytest.raises(RuntimeError):
            run_together(session, [(select(func.count(Message.id)), {})], commit=True)
        session.rollback()


def test_a_windows_record_is_committed_in_its_statements_sync(
    rt: Runtime, commits: list[TransactionStatus]
) -> None:
    rt.settings.worker_window = 4  # windows of two: each recorded by its own transaction
    rt.settings.worker_batch_size = 10
    intake(rt, *range(6))
    rt.transport = Recording()
    commits.clear()
    assert Worker(rt).drain() == 6
    # the take's transaction commits as usual; the windows' records had sent their COMMIT
    assert TransactionStatus.IDLE in commits


def test_lists_of_texts_reach_postgresql_as_the_arrays_they_are(
    rt: Runtime, commits: list[TransactionStatus]
) -> None:
    """TextArray (one text in the array literal's form): quotes, backslashes, braces, commas,
    spaces, NULL (the text and the value) and empty texts come back as sent, in a pipeline and
    through SQLAlchemy."""
    texts = ["", "NULL", None, 'a "quoted", {braced} text', "back\\slash\\", " spaced ", "æøå"]
    echo = select(bindparam("texts", type_=TextArray()), bindparam("numbers", type_=IntArray()))
    with rt.db.unit_of_work() as session:
        for given in (
            {"texts": texts, "numbers": [0, -1, 2**31 - 1]},
            {"texts": ["p1", "p2"], "numbers": [1]},
            {"texts": [], "numbers": []},
        ):
            sent = (given["texts"], given["numbers"])
            assert run_together(session, [(echo, given)]) == [[sent]]
            assert tuple(session.execute(echo, given).one()) == sent
