"""The worker's claim against a long queue (PostgreSQL): its latency with a small queue and with a
large backlog of due messages (inserted with one ``INSERT ... SELECT generate_series``, not
through the app), each the median of many claims rolled back at once, and the plans PostgreSQL
chose, which must find the due messages through ``ix_messages_due`` and never
scan the queue. A claim is what the worker does: ``outbox.take`` (lock and read the oldest due
messages with what sending them needs, decrypt, render) and ``jobs.lease``."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, insert, text
from sqlalchemy.orm import Session
from tests.postgres import prepare_postgres

from bench.common import PUBLIC_URL, bench_keys, open_database, progress
from tilfreds import migrate
from tilfreds.crypto import context
from tilfreds.db import Database
from tilfreds.invitations import jobs, outbox
from tilfreds.people.models import Person

INDEX = "ix_messages_due"
LEASE = timedelta(minutes=5)
WINDOW = 50  # the worker's default: the first window goes straight to in flight
KEYS = bench_keys()
CONTEXT = outbox.SendContext(public_url=PUBLIC_URL, controller="Bench AS", sender="2270")
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
    plan: str  # EXPLAIN ANALYZE of each statement of one claim on the large queue
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


def _person(db: Database) -> int:
    """The one person every message goes to: their number and name sealed as intake seals them,
    so each claim decrypts and renders like a real one."""
    keys, phone = bench_keys(), "+4741000000"
    index = keys.blind_index(phone)
    with db.unit_of_work() as session:
        return int(
            session.execute(
                insert(Person).returning(Person.id),
                {
                    "phone_index": index,
                    "phone_cipher": keys.encrypt(phone, context=context("people", "phone", index)),
                    "name_cipher": keys.encrypt("Kari", context=context("people", "name", index)),
                    "locale": "nb",
                    "created_at": FIRST_DUE,
                },
            ).scalar_one()
        )


def fill(db: Database, upto: int) -> None:
    """Add due, queued invitation messages to one person until there are ``upto``."""
    with db.engine.connect() as conn:
        person = conn.execute(text("SELECT min(id) FROM people")).scalar()
    person = person or _person(db)
    with db.engine.begin() as conn:
        have = int(conn.execute(text("SELECT count(*) FROM messages")).scalar_one())
        conn.execute(
            text(
                "INSERT INTO messages (purpose, status, person_id, send_after, attempts, "
                "created_at) SELECT 'invitation', 'queued', :person, "
                ":first + g * interval '10 milliseconds', 0, :first "
                "FROM generate_series(CAST(:start AS integer), CAST(:stop AS integer)) AS g"
            ),
            {"person": person, "first": FIRST_DUE, "start": have + 1, "stop": upto},
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE messages"))


def _claim_once(db: Database, *, batch_size: int, explain: bool = False) -> tuple[float, str]:
    """One claim as the worker makes it, timed alone in its own transaction, then rolled back
    (so every claim finds the same queue). With ``explain``, also the plans of its statements."""
    statements: list[tuple[str, object]] = []

    def keep(_c: object, _cur: object, sql: str, params: object, *_: object) -> None:
        statements.append((sql, params))

    session = Session(db.engine)
    try:
        session.begin()
        session.execute(text("SELECT 1"))  # BEGIN sent now, not inside the timed claim
        event.listen(db.engine, "before_cursor_execute", keep)
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        taken = outbox.take(session, KEYS, limit=batch_size, ctx=CONTEXT, now=now)
        jobs.lease(
            session,
            worker_id="bench",
            ids=taken.ids,
            sending=taken.ids[:WINDOW],
            lease_until=now + LEASE,
        )
        elapsed = (time.perf_counter() - t0) * 1000
        event.remove(db.engine, "before_cursor_execute", keep)
        if len(taken.sendable) != batch_size:
            raise RuntimeError(f"claimed {len(taken.sendable)} sendable, expected {batch_size}")
        plans = []
        for sql, params in statements if explain else []:
            session.rollback()
            session.begin()
            rows = session.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF) " + sql,
                params,  # type: ignore[arg-type]
            )
            plans.append("\n".join(str(row[0]) for row in rows))
        return elapsed, "\n\n".join(plans)
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
