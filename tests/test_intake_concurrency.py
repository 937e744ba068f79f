"""Batch intake while two ``tilfreds worker`` processes send, on PostgreSQL, with two batches
overlapping in their external ids at the same time: every interaction once, one invitation and
one message for each, each SMS sent once, none lost (real processes, threads and transactions)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.worker_processes import worker_env
from tilfreds.api.intake_rows import receive_rows
from tilfreds.clock import SystemClock
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Interaction, Person
from tilfreds.runtime import Runtime
from tilfreds.sms.dev import DevPhoneMessage

# two streams of ROWS rows, the second half a batch behind: each of its batches shares half its
# external ids with the batch the first stream writes at the same time
ROWS, BATCH = 1200, 200
SHIFT = BATCH // 2
INVITING = Message.purpose == "invitation"  # the workers also queue reminders, for later


def payload(n: int, occurred_at: str) -> dict[str, Any]:
    return {
        "external_id": f"race-{n}",
        "customer": {"name": "Kari Nordmann", "phone": f"4{1_000_000 + n:07d}", "locale": "nb"},
        "channel": "phone",
        "reason": "payment plan",
        "occurred_at": occurred_at,
    }


def test_batches_and_two_workers_together_make_each_invitation_once_and_send_it_once(
    rt: Runtime,
) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("several worker processes need PostgreSQL's row locks; SQLite runs one")
    live = replace(rt, clock=SystemClock())  # the workers read the system clock too
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    env = worker_env(rt, worker_batch_size="20", worker_poll_seconds="0.05")
    cmd = [sys.executable, "-m", "tilfreds", "worker"]
    workers = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    created: list[str] = []
    failures: list[BaseException] = []

    def stream(first: int) -> None:
        try:
            for start in range(first, first + ROWS, BATCH):
                rows = [(n, payload(n, when)) for n in range(start, start + BATCH)]
                received = receive_rows(live, rows, actor="test")
                assert not received.errors
                created.extend(r["external_id"] for r in received.results if r["created"])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    try:
        streams = [threading.Thread(target=stream, args=(f,)) for f in (0, SHIFT)]
        for t in streams:
            t.start()
        for t in streams:
            t.join(timeout=300)
        assert not failures, failures
        total = ROWS + SHIFT
        _wait_until_sent(rt, total)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            _out, err = w.communicate(timeout=60)
            assert w.returncode == 0, err
    assert sorted(created) == sorted(f"race-{n}" for n in range(total))  # each once
    with rt.db.read_only() as session:
        counts = session.execute(
            select(
                select(func.count()).select_from(Interaction).scalar_subquery(),
                select(func.count(func.distinct(Invitation.interaction_id))).scalar_subquery(),
                select(func.count()).select_from(Invitation).scalar_subquery(),
                select(func.count()).select_from(Message).where(INVITING).scalar_subquery(),
                select(func.count(func.distinct(DevPhoneMessage.reference))).scalar_subquery(),
                select(func.count()).select_from(DevPhoneMessage).scalar_subquery(),
                select(func.count()).select_from(Person).scalar_subquery(),  # none left over
            )
        ).one()
        by_status = dict(
            session.execute(
                select(Message.status, func.count()).where(INVITING).group_by(Message.status)
            ).all()
        )
    assert tuple(counts) == (total,) * 7
    assert by_status == {"delivered": total}  # the dev transport reports each one delivered


def _wait_until_sent(rt: Runtime, total: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with rt.db.read_only() as session:
            sent = session.execute(
                select(func.count())
                .select_from(Message)
                .where(Message.status.in_(("submitted", "delivered")))  # the dev phone's receipt
            ).scalar_one()
        if sent >= total:
            return
        time.sleep(0.5)
    raise AssertionError(f"only {sent} of {total} messages were sent in time")
