"""The worker's batching (P3). On PostgreSQL, while a backlog drains, the next batch is taken
(claimed, never in flight) while one is sent, and the windows run on from batch to batch; where
the pass ends after a full batch (SQLite, a sweep due, a stop), its last outcomes wait for the
next pass's claim, and are never lost: a worker that stops, or a drain that ends, records them
first."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.test_worker import Recording, intake, statuses
from tests.test_worker_pipeline import Killed
from tilfreds.clock import FrozenClock
from tilfreds.invitations import jobs
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import OutboundSms
from tilfreds.worker import Worker


def _postgres(rt: Runtime) -> bool:
    return rt.db.engine.dialect.name == "postgresql"


def test_p3_a_full_batch_last_window_is_recorded_with_the_next_claim(rt: Runtime) -> None:
    rt.settings.worker_batch_size, rt.settings.worker_window = 2, 1
    rt.transport = Recording()
    intake(rt, 1, 2, 3)
    rt.settings.worker_sweep_seconds = 0  # a sweep due before each pass: none runs on
    worker = Worker(rt)
    assert worker.run_once().claimed == 2
    assert statuses(rt) == [("submitted", None), ("sending", None), ("queued", None)]
    assert worker.run_once().claimed == 1  # a batch that was not full is recorded at once
    assert statuses(rt) == [("submitted", None)] * 3


def test_p3_a_drain_leaves_nothing_in_flight(rt: Runtime) -> None:
    rt.settings.worker_batch_size, rt.settings.worker_window = 2, 1
    rt.transport = transport = Recording()
    intake(rt, 1, 2, 3, 4)
    assert Worker(rt).drain() == 4
    assert len(transport.sent) == 4 and statuses(rt) == [("submitted", None)] * 4


def test_p3_a_worker_told_to_stop_records_the_outcomes_it_holds(rt: Runtime) -> None:
    """It stops right after a full batch, whose last outcome would have waited for the next
    claim: it is recorded before the worker returns."""
    rt.settings.worker_batch_size, rt.settings.worker_window = 2, 1
    stop = threading.Event()

    def stop_at_the_second(_sms: OutboundSms) -> None:
        if transport.sent:
            stop.set()

    rt.transport = transport = Recording(before=stop_at_the_second)
    intake(rt, 1, 2, 3)
    Worker(rt).run(stop)
    assert len(transport.sent) == 2
    assert statuses(rt) == [("submitted", None), ("submitted", None), ("queued", None)]


def test_p3_on_postgres_a_backlog_runs_on_and_a_batch_taken_ahead_is_never_in_flight(
    rt: Runtime, clock: FrozenClock
) -> None:
    """The second batch is taken while the first is sent: claimed, not in flight, so a crash
    as its first window goes out leaves at most ``worker_window`` in doubt and the rest of it
    back in the queue."""
    if not _postgres(rt):
        pytest.skip("SQLite has one writer: its worker takes a batch at a time")
    rt.settings.worker_batch_size, rt.settings.worker_window = 4, 2
    seen: list[list[tuple[str, str | None]]] = []

    def watch(_sms: OutboundSms) -> None:
        seen.append(statuses(rt))
        if len(transport.sent) == 5:  # the second batch's second message
            raise Killed

    rt.transport = transport = Recording(before=watch)
    intake(rt, *range(1, 11))
    worker = Worker(rt)
    with pytest.raises(Killed):
        worker.run_once()
    assert len(transport.sent) == 5  # one pass ran on into the second batch
    # as the first batch's last message went out, the second batch was taken, none in flight
    assert [s for s, _ in seen[3]][4:8] == ["claimed"] * 4
    assert max(sum(s == "sending" for s, _ in before) for before in seen) <= 2
    with rt.db.unit_of_work() as session:
        recovery = jobs.recover_expired_leases(
            session,
            now=clock.now() + timedelta(seconds=rt.settings.worker_lease_seconds + 1),
            resend_in_doubt=False,
        )
    assert recovery.in_doubt <= 2
    assert [s for s, _ in statuses(rt)] == ["submitted"] * 4 + ["submitted"] + ["in_doubt"] * (
        recovery.in_doubt
    ) + ["queued"] * (5 - recovery.in_doubt)
