"""Delivery receipts for ids no message has are kept for reconciliation, then deleted (P3): a
receipt whose id shows up settles its message and stays with it; one whose id never shows up is
deleted by the worker's sweep once it is ``TILFREDS_UNMATCHED_RECEIPTS_DAYS`` old, and the sweep
says how many it deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.test_sms_receipts import D, F, Segmented, messages, receipts, status
from tests.test_worker import intake
from tilfreds.clock import FrozenClock
from tilfreds.invitations.models import MessagePart
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

DELETED = "deleted 1 delivery receipts that matched no message"


def parts(rt: Runtime) -> dict[str, int | None]:
    with rt.db.read_only() as session:
        rows = session.execute(select(MessagePart.provider_id, MessagePart.message_id)).all()
    return {pid: mid for pid, mid in rows}


def test_p3_an_unmatched_receipt_is_deleted_by_the_sweep_once_its_retention_is_over(
    rt: Runtime, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    rt.settings.unmatched_receipts_days = 2
    receipts(rt, ("from-another-system", D))
    worker = Worker(rt)
    with caplog.at_level("WARNING", logger="tilfreds.worker"):
        clock.advance(timedelta(days=2) - timedelta(seconds=1))
        worker.sweep()  # still within its retention: kept
        assert parts(rt) == {"from-another-system": None}
        assert DELETED not in caplog.text
        clock.advance(timedelta(seconds=2))
        worker.sweep()
        assert parts(rt) == {}
        worker.sweep()  # nothing left to delete, nothing said
    assert caplog.text.count(DELETED) == 1


def test_p3_a_receipt_whose_id_shows_up_settles_its_message_and_outlives_the_retention(
    rt: Runtime, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    intake(rt, 1)
    [mid] = [m.id for m in messages(rt)]
    receipts(rt, (f"s{mid}-0", D), ("never-ours", F))  # both before any id is known
    rt.transport = Segmented(segments=1)
    worker = Worker(rt)
    assert worker.drain() == 1  # records s<mid>-0: the kept receipt is reconciled
    assert status(rt) == ["delivered"]
    clock.advance(timedelta(days=rt.settings.unmatched_receipts_days, seconds=1))
    with caplog.at_level("WARNING", logger="tilfreds.worker"):
        worker.sweep()
    assert parts(rt) == {f"s{mid}-0": mid}  # the stranger is gone, the reconciled one stays
    assert caplog.text.count(DELETED) == 1
    assert status(rt) == ["delivered"]
