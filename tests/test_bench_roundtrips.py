"""The benchmarks' round-trip counter (bench/roundtrips.py): on PostgreSQL it counts what goes
over the wire, so statements sent together in a pipeline are one wait and the bearer token's
autocommit read, which SQLAlchemy's transaction events never see, is counted too."""

from __future__ import annotations

import pytest
from bench.roundtrips import RoundTrips
from sqlalchemy import literal, select

from tilfreds.pipelined import run_together
from tilfreds.runtime import Runtime


def test_waits_and_statements_are_counted_from_the_wire(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite has no wire: its statements are counted from SQLAlchemy's events")
    counter = RoundTrips(rt.db.engine).attach()
    with rt.db.unit_of_work() as session:
        run_together(session, [(select(literal(1)), {}), (select(literal(2)), {})])
    assert rt.db.one_row(select(literal(3)), {}) == (3,)
    counter.detach()
    counts = counter.summary()
    # BEGIN (psycopg's, answered alone), the pipeline's two statements (one sync), COMMIT, the
    # autocommit read
    assert counts["round_trips"] == 4
    assert (counts["statements"], counts["begin"], counts["commit"]) == (3, 1, 1)
    assert counts["statement:SELECT"] == 3


def test_sqlite_statements_are_counted_from_sqlalchemys_events(rt: Runtime) -> None:
    if rt.db.dialect != "sqlite":
        pytest.skip("PostgreSQL is counted from the wire")
    counter = RoundTrips(rt.db.engine).attach()
    with rt.db.unit_of_work() as session:
        session.execute(select(literal(1)))
    counter.detach()
    counts = counter.summary()
    assert (counts["statement:BEGIN"], counts["statement:SELECT"], counts["commit"]) == (1, 1, 1)
    assert counts["round_trips"] == 3
