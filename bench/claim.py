"""The worker's claim against a long queue (PostgreSQL): its latency with a small queue and with a
large backlog of due messages (inserted with one ``INSERT ... SELECT generate_series``, not
through the app), each the median of many claims rolled back at once, and the plan PostgreSQL
chose, which must use ``ix_messages_status_send_after_id`` rather than scan the queue."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, text
from sqlalchemy.orm import Session
from tests.postgres import prepare_postgres

from bench.common import open_database, progress
from tilfreds import migrate
from tilfreds.db import Database
from tilfreds.invitations import jobs

INDEX = "ix_messages_status_send_after_id"
LEASE = timedelta(minutes=5)
# every message is due long before the claims run, 10 ms apart, in id order
FIRST_DUE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClaimResult:
    small: int  # messages queued for the first measurement
    large: int  # ... and for the second
    batch_size: int
    claims: int  # claims timed at each size
    small_ms: tuple[float, ...]
    large_ms: tuple[float, ...]
    plan: str  # EXPLAIN ANALYZE of one claim on the large queue
    fill_seconds: float  # inserting the large backlog

    @property
    def small_median(self) -> float:
        return statistics.median(self.small_ms)

    @property
    def large_median(self) -> float:
        return statistics.median(self.large_ms)

    @property
    def ratio(self) -> float:
        """How many times slower a claim is on the large queue (target: at most 3)."""
        return self.large_median / self.small_median

    @property
    def uses_index(self) -> bool:
        """The due messages are found through the index, and the queue is never scanned."""
        return INDEX in self.plan and "Seq Scan on messages" not in self.plan


def fill(db: Database, upto: int) -> None:
    """Add due, queued messages (a sealed number each, no person) until there are ``upto``."""
    with db.engine.begin() as conn:
        have = int(conn.execute(text("SELECT count(*) FROM messages")).scalar_one())
        conn.execute(
            text(
                "INSERT INTO messages (purpose, status, to_cipher, send_after, attempts, "
                "created_at) SELECT 'rights_notice', 'queued', '\\x00'::bytea, "
                ":first + g * interval '10 milliseconds', 0, :first "
                "FROM generate_series(CAST(:start AS integer), CAST(:stop AS integer)) AS g"
            ),
            {"first": FIRST_DUE, "start": have + 1, "stop": upto},
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE messages"))


def _claim_once(db: Database, *, batch_size: int, explain: bool = False) -> tuple[float, str]:
    """One claim as the worker makes it, timed alone in its own transaction, then rolled back
    (so every claim finds the same queue). With ``explain``, also the plan of that statement."""
    statements: list[tuple[str, object]] = []

    def keep(_c: object, _cur: object, sql: str, params: object, *_: object) -> None:
        statements.append((sql, params))

    session = Session(db.engine)
    try:
        session.begin()
        session.execute(text("SELECT 1"))  # BEGIN sent now, not inside the timed claim
        event.listen(db.engine, "before_cursor_execute", keep)
        t0 = time.perf_counter()
        ids = jobs.claim(
            session, worker_id="bench", now=datetime.now(UTC), limit=batch_size, lease=LEASE
        )
        elapsed = (time.perf_counter() - t0) * 1000
        event.remove(db.engine, "before_cursor_execute", keep)
        if len(ids) != batch_size:
            raise RuntimeError(f"claimed {len(ids)} messages, expected {batch_size}")
        plan = ""
        if explain:
            session.rollback()
            session.begin()
            sql, params = statements[-1]
            rows = session.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF) " + sql,
                params,  # type: ignore[arg-type]
            )
            plan = "\n".join(str(row[0]) for row in rows)
        return elapsed, plan
    finally:
        session.rollback()
        session.close()


def _measure(db: Database, *, claims: int, batch_size: int, label: str) -> tuple[float, ...]:
    for _ in range(3):  # warm caches and psycopg's prepared statements
        _claim_once(db, batch_size=batch_size)
    times = []
    with progress() as bar:
        task = bar.add_task(label, total=claims)
        for _ in range(claims):
            times.append(_claim_once(db, batch_size=batch_size)[0])
            bar.advance(task)
    return tuple(times)


def run(*, pg_url: str, small: int, large: int, claims: int, batch_size: int) -> ClaimResult:
    prepare_postgres(pg_url)
    db = open_database(pg_url)
    try:
        migrate.upgrade(db)
        fill(db, small)
        small_ms = _measure(
            db, claims=claims, batch_size=batch_size, label=f"claim from {small:,} queued"
        )
        t0 = time.perf_counter()
        fill(db, large)
        fill_seconds = time.perf_counter() - t0
        large_ms = _measure(
            db, claims=claims, batch_size=batch_size, label=f"claim from {large:,} queued"
        )
        plan = _claim_once(db, batch_size=batch_size, explain=True)[1]
    finally:
        db.dispose()
    return ClaimResult(
        small=small,
        large=large,
        batch_size=batch_size,
        claims=claims,
        small_ms=small_ms,
        large_ms=large_ms,
        plan=plan,
        fill_seconds=fill_seconds,
    )
