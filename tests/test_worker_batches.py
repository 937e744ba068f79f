"""The worker's batching (P3): a full batch's last outcomes wait for the next pass's claim, and
are never lost: a worker that stops, or a drain that ends, records them first. Windows answered
before their turn to be recorded are recorded together, one transaction fewer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from tests.test_worker import Recording, intake, statuses
from tilfreds import worker as worker_module
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import Answered, Handover, OutboundSms
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


class Instant(Recording):
    """Answers each window as it is handed over."""

    def hand(self, window: Sequence[OutboundSms]) -> Handover:
        return Answered([self.send(sms) for sms in window])


class StillOnTheWire(Answered):
    """A window whose answers are not in when the worker looks: it waits for them."""

    def ready(self) -> bool:
        return False


class Slow(Recording):
    def hand(self, window: Sequence[OutboundSms]) -> Handover:
        return StillOnTheWire([self.send(sms) for sms in window])


def recordings(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The ids of each recording of outcomes the worker makes, in turn."""
    seen: list[list[int]] = []
    record = worker_module.record_outcomes

    def spy(session: Any, **kw: Any) -> set[int]:
        if kw["outcomes"]:
            seen.append(sorted(kw["outcomes"]))
        return record(session, **kw)

    monkeypatch.setattr(worker_module, "record_outcomes", spy)
    return seen


def test_p3_windows_answered_at_once_are_recorded_in_one_transaction(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of four, windows of two, both in flight from the take: the second window is
    answered when the first is collected, so all four are recorded together (with the next
    batch's take), not window by window."""
    rt.settings.worker_batch_size, rt.settings.worker_window = 4, 4
    rt.transport = Instant()
    seen = recordings(monkeypatch)
    intake(rt, *range(1, 9))
    assert Worker(rt).drain() == 8
    assert [len(ids) for ids in seen] == [4, 4]
    assert statuses(rt) == [("submitted", None)] * 8


def test_p3_a_window_still_on_the_wire_is_not_waited_for_to_record_the_one_before(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same batches with answers that come later: the first window is recorded while the
    second is on the wire."""
    rt.settings.worker_batch_size, rt.settings.worker_window = 4, 4
    rt.transport = Slow()
    seen = recordings(monkeypatch)
    intake(rt, *range(1, 9))
    assert Worker(rt).drain() == 8
    assert [len(ids) for ids in seen] == [2, 2, 2, 2]
    assert statuses(rt) == [("submitted", None)] * 8
