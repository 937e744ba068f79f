"""Plans of the hot statements that must hold through the generic plan of a prepared statement
(psycopg prepares a statement run five times, and PostgreSQL may then keep one plan for any
parameters, made while a table was small): the queue's partial indexes serve the worker's claim
and the sweep's look-up of leases that ran out (a generic plan can only use a partial index whose
condition the query states with literals), and settling receipts never tests each part against
every id of a batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from tilfreds import pipelined
from tilfreds.invitations import jobs, outbox, settling
from tilfreds.invitations.states import MessageStatus
from tilfreds.runtime import Runtime

QUEUE = 50_000  # a tenth of them queued, the rest submitted long ago


def generic_plan(rt: Runtime, sql: str, types: str, args: str) -> str:
    with rt.db.engine.begin() as conn:
        conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        conn.exec_driver_sql(f"PREPARE probe({types}) AS {sql}")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN EXECUTE probe({args})"))
        conn.exec_driver_sql("DEALLOCATE probe")
    return plan


@pytest.fixture
def long_queue(rt: Runtime) -> Runtime:
    if rt.db.dialect != "postgresql":
        pytest.skip("prepared statements' generic plans are PostgreSQL's")
    with rt.db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO messages "
                "(purpose, status, send_after, created_at, to_cipher, attempts) "
                "SELECT 'identity_code', CASE WHEN g % 10 = 0 THEN 'queued' ELSE 'submitted' END, "
                "now() - g * interval '1 second', now(), '\\x00', 0 "
                f"FROM generate_series(1, {QUEUE}) g"
            )
        )
        conn.execute(text("ANALYZE messages"))
    return rt


def compiled(statement: object) -> str:
    return statement.compile(dialect=postgresql.dialect()).string  # type: ignore[attr-defined]


def test_p3_the_claim_finds_due_messages_through_the_due_index_in_a_generic_plan(
    long_queue: Runtime,
) -> None:
    sql = compiled(outbox._take_query())
    sql = sql.replace("%(now)s", "$1").replace("%(limit)s", "$2").replace("%(purpose_1)s", "$3")
    plan = generic_plan(long_queue, sql, "timestamptz, int, varchar", "now(), 100, 'invitation'")
    assert "Index Scan using ix_messages_due on messages" in plan, plan
    assert "Seq Scan on messages" not in plan, plan


def test_p3_leases_that_ran_out_are_found_through_their_index_in_a_generic_plan(
    long_queue: Runtime,
) -> None:
    expired = jobs._expired(MessageStatus.SENDING, datetime.now(UTC), 1000)
    sql = compiled(select(expired))
    sql = sql.replace("%(lease_until_1)s", "$1").replace("%(param_1)s", "$2")
    plan = generic_plan(long_queue, sql, "timestamptz, int", "now(), 1000")
    assert "ix_messages_leased on messages" in plan, plan
    assert "Seq Scan on messages" not in plan, plan


def test_p3_settling_receipts_is_planned_afresh_and_looks_each_id_up(rt: Runtime) -> None:
    """A plan kept from when message_parts was empty (a new installation) read every part for
    each id (0.5-0.8 s a tally at 35,000 parts), so the settling update is never prepared; each
    time it is planned with the table's size, it looks each id's parts up by the index."""
    if rt.db.dialect != "postgresql":
        pytest.skip("prepared statements' generic plans are PostgreSQL's")
    with rt.db.unit_of_work() as session:
        for _ in range(8):  # psycopg prepares a statement from its fifth run
            settling.settle(session, [1, 2, 3])
        prepared = session.execute(text("SELECT statement FROM pg_prepared_statements"))
        assert not [s for s in prepared.scalars() if "UPDATE messages" in s]
        session.execute(
            text(
                "INSERT INTO message_parts (transport, provider_id, part, created_at) "
                "SELECT 'smpp', 'p' || g, 0, now() FROM generate_series(1, 50000) g"
            )
        )
        # the table's size as the planner then sees it (without this, what an earlier test
        # left in its statistics decides the plan: seen flaky)
        session.execute(text("ANALYZE message_parts"))
        _lock, verdict = settling._settle_statements(True)
        statement = verdict.compile(dialect=postgresql.dialect())
        sql = statement.string.replace("%(now)s", "now()")
        ids = "{" + ",".join(str(n) for n in range(1, 501)) + "}"
        for name, value in statement.construct_params({"ids": ids, "now": None}).items():
            sql = sql.replace(f"%({name})s", "NULL" if value is None else f"'{value}'")
        plan = "\n".join(session.execute(text(f"EXPLAIN {sql}")).scalars())
    assert "ix_message_parts_message_id" in plan, plan  # its index, bitmap or not
    assert "Seq Scan on message_parts" not in plan, plan


def verbose_plan(rt: Runtime, statement: object, given: dict[str, object]) -> str:
    """``EXPLAIN VERBOSE`` of a statement with these values written in as literals (as a custom
    plan sees its parameters): the expressions each node evaluates, per row, are shown."""
    with rt.db.unit_of_work() as session:
        dialect = session.get_bind().dialect
        done = pipelined.compiled(statement, dialect)
        sql = done.sql
        for name, value in done.params(given).items():
            sql = sql.replace(f"%({name})s", "NULL" if value is None else f"'{value}'")
        return "\n".join(session.execute(text(f"EXPLAIN VERBOSE {sql}")).scalars())


def per_row(plan: str) -> str:
    """The lines of a plan with the tests made on every row (the ``CASE`` of what is set)."""
    return "\n".join(line for line in plan.splitlines() if "CASE WHEN" in line)


def test_a_windows_statements_cast_the_window_to_start_once_not_on_every_row(rt: Runtime) -> None:
    """The lease and the window's update test on every row whether it is one to start. Tested
    as ``id = ANY(CAST(:text AS integer[]))`` the cast (``array_in``, only stable, so never
    folded) is redone for every row and every test: in the window's update nine times a row,
    half of its time. So the lease casts it once (a sub-select) and the update reads a flag of
    the row's own, from the arrays it joins."""
    if rt.db.dialect != "postgresql":
        pytest.skip("the statements bind arrays on PostgreSQL only")
    hot = jobs.statements(True)
    now = datetime.now(UTC)
    lease = verbose_plan(
        rt,
        hot.lease,
        {"ids": [1, 2, 3, 4], "sending": [3, 4], "worker": "w", "until": now},
    )
    assert "'{3,4}'" in lease, lease
    assert "'{3,4}'" not in per_row(lease), lease  # cast by the sub-selects, once each
    submitted = verbose_plan(
        rt,
        hot.submitted,
        {
            "ids": [1, 2, 3, 4],
            "pids": ["a", "b", "", ""],
            "segs": [1, 1, 0, 0],
            "encs": ["gsm7", "gsm7", "", ""],
            "starts": [0, 0, 1, 1],
            "worker": "w",
            "now": now,
            "until": now,
            "transport": "smpp",
        },
    )
    assert "v.go" in per_row(submitted), submitted
    assert "::integer[]" not in per_row(submitted), submitted
