"""The worker's batching (P3): a full batch's last outcomes wait for the next pass's claim, and
are never lost: a worker that stops, or a drain that ends, records them first."""

from __future__ import annotations

import threading

from tests.test_worker import Recording, intake, statuses
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import OutboundSms
from tilfreds.worker import Worker


def test_p3_a_full_batch_last_window_is_recorded_with_the_next_claim(rt: Runtime) -> None:
    rt.settings.worker_batch_size, rt.settings.worker_window = 2, 1
    rt.transport = Recording()
    intake(rt, 1, 2, 3)
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
