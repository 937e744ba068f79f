"""Send worker throughput: ``Worker(rt).drain()`` of N due messages with a null transport, against a
raw SQL claim+mark loop on the same table in batches of the same size (the limit). Also counts
the statements and round trips of one drain, and records the worker's memory: peak RSS while
draining and the tracemalloc peak of one drain."""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy import bindparam, func, select, text, update

from bench.common import NullTransport, fresh_database, interaction_in, make_runtime, progress
from bench.roundtrips import RoundTrips
from tilfreds.db import Database, UTCDateTime
from tilfreds.invitations.intake import receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessageStatus
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

INTAKE_PER_TRANSACTION = 100  # setup only, not measured


@dataclass(frozen=True)
class WorkerResult:
    database: str
    messages: int
    batch_size: int
    repeat: int
    tilfreds_seconds: float  # median of the timed runs
    baseline_seconds: float
    tilfreds_runs: tuple[float, ...]
    baseline_runs: tuple[float, ...]
    tilfreds_counts: dict[str, int]  # what one whole drain sent (see bench.roundtrips)
    baseline_counts: dict[str, int]
    rss_before_kib: int | None
    rss_peak_kib: int  # VmHWM reset before each timed drain, the largest; else getrusage
    rss_peak_source: str
    tracemalloc_peak_bytes: int
    tracemalloc_seconds: float

    @property
    def tilfreds_rate(self) -> float:
        return self.messages / self.tilfreds_seconds

    @property
    def baseline_rate(self) -> float:
        return self.messages / self.baseline_seconds

    @property
    def pair_ratios(self) -> list[float]:
        """tilfreds as a fraction of the limit (1.0 = as fast), for each pair of adjacent runs."""
        return [b / t for t, b in zip(self.tilfreds_runs, self.baseline_runs, strict=True)]

    @property
    def ratio(self) -> float:
        """The median of the pairs' ratios: the machine's drift between pairs cancels out."""
        return statistics.median(self.pair_ratios)

    def per_message(self, counts: dict[str, int], what: str) -> float:
        return counts.get(what, 0) / self.messages


# --- memory probes (Linux /proc; None elsewhere) -----------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_kib() -> int:
    """The process's peak RSS since it started (KiB on Linux); the fallback without /proc."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next peak is this phase's alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- setup and reset ---------------------------------------------------------------------------


def enqueue(rt: Runtime, n: int) -> None:
    """Create ``n`` due messages through the real intake service."""
    db = rt.db
    with progress() as bar:
        task = bar.add_task(f"{db.dialect}: intake via receive_interaction", total=n)
        for start in range(0, n, INTAKE_PER_TRANSACTION):
            now = datetime.now(UTC)
            with db.unit_of_work() as session:
                for i in range(start, min(start + INTAKE_PER_TRANSACTION, n)):
                    receive_interaction(
                        session,
                        rt.keys,
                        interaction_in(i),
                        timing=rt.timing(),
                        now=now,
                        actor="bench",
                    )
                    bar.advance(task)


def requeue(db: Database) -> None:
    """Put every message (and its invitation) back as intake left it, then let PostgreSQL tidy
    the dead rows, so each measured run starts from the same table."""
    with db.unit_of_work() as session:
        session.execute(
            update(Message).values(
                status=MessageStatus.QUEUED,
                claimed_by=None,
                lease_until=None,
                attempts=0,
                transport=None,
                provider_id=None,
                submitted_at=None,
            )
        )
        session.execute(update(Invitation).values(status=InvitationStatus.PENDING, sent_at=None))
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE messages, invitations"))


def count_submitted(db: Database) -> int:
    with db.read_only() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Message)
                .where(Message.status == MessageStatus.SUBMITTED)
            ).scalar_one()
        )


# --- the two contenders ------------------------------------------------------------------------


def raw_claim_and_mark(
    db: Database, *, batch_size: int, on_batch: Callable[[int], object], count: bool = False
) -> tuple[int, dict[str, int]]:
    """The limit: the least a queue must do per batch, in one transaction each: take the oldest
    due ids (locked, skipping locked rows, on PostgreSQL) and mark them submitted. Returns the
    rows marked and (when ``count``; not in timed runs) what was sent to the database."""
    lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
    claim = text(
        "SELECT id FROM messages WHERE status = 'queued' AND send_after <= :now "
        f"ORDER BY send_after, id LIMIT :n{lock}"
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    mark = text("UPDATE messages SET status = 'submitted' WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    total = 0
    counter = RoundTrips(db.engine)
    if count:
        counter.attach()
    try:
        while True:
            with db.engine.begin() as conn:
                now = datetime.now(UTC)
                ids = list(conn.execute(claim, {"now": now, "n": batch_size}).scalars())
                if ids:
                    conn.execute(mark, {"ids": ids})
            if not ids:
                counter.detach()  # its traces written out before they are read
                return total, counter.summary()
            total += len(ids)
            on_batch(len(ids))
    finally:
        counter.detach()


def run(
    kind: str, *, messages: int, batch_size: int, repeat: int, workdir: Path, pg_url: str
) -> WorkerResult:
    transport = NullTransport()
    db = fresh_database(kind, workdir=workdir, pg_url=pg_url, name="worker")
    tilfreds_times: list[float] = []
    baseline_times: list[float] = []
    peaks: list[int] = []
    try:
        rt = make_runtime(db, workdir=workdir, batch_size=batch_size, transport=transport)
        enqueue(rt, messages)
        requeue(db)  # also VACUUM ANALYZE on PostgreSQL

        with progress() as bar:
            # 1. drain under tracemalloc, counting statements: the memory and statement figures;
            #    it also warms SQLAlchemy's caches for the timed runs
            task = bar.add_task(f"{kind}: Worker.drain() under tracemalloc", total=messages)
            transport.on_send = lambda: bar.advance(task)
            counter = RoundTrips(db.engine).attach()
            tracemalloc.start()
            t0 = time.perf_counter()
            drained = Worker(rt).drain()
            traced_seconds = time.perf_counter() - t0
            _current, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            counter.detach()
            _check(db, drained, messages, "traced drain")
            requeue(db)
            task = bar.add_task(f"{kind}: raw SQL claim+mark, counted", total=messages)
            drained, raw_counts = raw_claim_and_mark(
                db, batch_size=batch_size, on_batch=partial(bar.advance, task), count=True
            )
            _check(db, drained, messages, "counted raw loop")
            requeue(db)

            # 2. timed runs, alternating tilfreds and the limit on the same rows
            rss_before = _status_kib("VmRSS")
            for n in range(1, repeat + 1):
                # no per-message progress while timed: the limit advances once per batch
                task = bar.add_task(f"{kind}: Worker.drain() {n}/{repeat}", total=messages)
                transport.on_send = None
                reset = _reset_peak_rss()
                t0 = time.perf_counter()
                drained = Worker(rt).drain()
                tilfreds_times.append(time.perf_counter() - t0)
                peak = _status_kib("VmHWM") if reset else None
                if peak is not None:
                    peaks.append(peak)
                bar.update(task, completed=drained)
                _check(db, drained, messages, "timed drain")
                requeue(db)

                task = bar.add_task(f"{kind}: raw SQL claim+mark {n}/{repeat}", total=messages)
                t0 = time.perf_counter()
                drained, _ = raw_claim_and_mark(
                    db, batch_size=batch_size, on_batch=partial(bar.advance, task)
                )
                baseline_times.append(time.perf_counter() - t0)
                _check(db, drained, messages, "raw loop")
                requeue(db)
    finally:
        db.dispose()
    return WorkerResult(
        database=kind,
        messages=messages,
        batch_size=batch_size,
        repeat=repeat,
        tilfreds_seconds=statistics.median(tilfreds_times),
        baseline_seconds=statistics.median(baseline_times),
        tilfreds_runs=tuple(tilfreds_times),
        baseline_runs=tuple(baseline_times),
        tilfreds_counts=counter.summary(),
        baseline_counts=raw_counts,
        rss_before_kib=rss_before,
        rss_peak_kib=max(peaks) if peaks else _maxrss_kib(),
        rss_peak_source="VmHWM" if peaks else "getrusage",
        tracemalloc_peak_bytes=traced_peak,
        tracemalloc_seconds=traced_seconds,
    )


def _check(db: Database, drained: int, expected: int, what: str) -> None:
    submitted = count_submitted(db)
    if drained != expected or submitted != expected:
        raise RuntimeError(f"{what}: drained {drained}, {submitted} submitted, expected {expected}")
