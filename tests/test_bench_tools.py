"""The benchmarks' own instruments. The round-trip counter (bench/roundtrips.py): on PostgreSQL
it counts what goes over the wire, so statements sent together in a pipeline are one wait and the
bearer token's autocommit read, which SQLAlchemy's transaction events never see, is counted too.
The peak memory of a command (bench/peaks.py): its own, not the benchmark process's."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest
from bench.peaks import run_watched
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


def test_a_commands_peak_memory_is_its_own_not_its_parents() -> None:
    """On Linux ``wait4`` would report at least the RSS the parent had when it forked (here
    over 200 MiB); the command itself peaks near 40 MiB above an interpreter's start."""
    held = bytearray(200 * 1024 * 1024)
    for i in range(0, len(held), 4096):  # touched, so resident
        held[i] = 1
    grow = "import time; b = bytearray(40 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
    with tempfile.TemporaryFile() as out:
        run = run_watched(
            [sys.executable, "-c", grow + "time.sleep(0.3)"],
            env=dict(os.environ),
            output=out,
            timeout=30,
        )
    assert run.returncode == 0
    assert 40 * 1024 < run.peak_kib < 150 * 1024, run
    del held
