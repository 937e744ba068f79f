"""Receipts racing the worker's recording of the same messages, in real concurrent transactions
on PostgreSQL (P3): both write parts and messages, in one lock order (parts in key order, then
messages in id order), so neither deadlocks nor loses the other's state."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.test_worker import intake
from tilfreds.invitations import jobs, outcomes
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import Receipt, ReceiptState, Submitted

N, WINDOW, BATCH = 300, 20, 25


def test_p3_receipts_racing_the_submit_records_lose_nothing_and_never_deadlock(
    rt: Runtime,
) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers: there are no row locks to race")
    intake(rt, *range(1, N + 1))
    now = rt.clock.now()
    with rt.db.unit_of_work() as session:
        ids = jobs.claim(session, worker_id="w", now=now, limit=N, lease=timedelta(hours=1))
        jobs.start_sending(session, worker_id="w", ids=ids, lease_until=now + timedelta(hours=1))
    parts = [f"r{mid}-{n}" for mid in ids for n in (0, 1)]
    rng = random.Random(6)
    go, errors = threading.Barrier(3), []

    def recorder() -> None:
        go.wait()
        for start in range(0, N, WINDOW):
            window = ids[start : start + WINDOW]
            with rt.db.unit_of_work() as session:
                outcomes.record_outcomes(
                    session,
                    worker_id="w",
                    transport="race",
                    outcomes={
                        mid: Submitted((f"r{mid}-0", f"r{mid}-1"), segments=2) for mid in window
                    },
                    now=rt.clock.now(),
                )

    def receiver(states: tuple[ReceiptState, ...]) -> None:
        order = rng.sample(parts, len(parts))
        go.wait()
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            rt.events.receipts([Receipt("race", pid, s) for pid in batch for s in states])

    def guarded(target: object, *args: object) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)  # type: ignore[operator]
            except Exception as exc:  # a deadlock or a lost update would surface here
                errors.append(exc)

        return threading.Thread(target=run)

    threads = [
        guarded(recorder),
        guarded(receiver, (ReceiptState.DELIVERED,)),
        guarded(receiver, (ReceiptState.ENROUTE, ReceiptState.DELIVERED)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with rt.db.read_only() as session:
        statuses = session.execute(
            select(Message.status, func.count()).group_by(Message.status)
        ).all()
        orphans = session.execute(
            select(func.count()).where(MessagePart.message_id.is_(None))
        ).scalar()
    assert dict(statuses) == {"delivered": N}
    assert orphans == 0
