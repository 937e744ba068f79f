"""The pipelined worker (P3): window n+1 is handed to the transport before window n's answers
are collected, and is on the wire while window n's outcomes are recorded. A message is marked in
flight, committed, before it is handed over, and the windows in flight together never exceed
``worker_window``: a crash while window n is recorded and window n+1 is in flight loses nothing
and leaves only those in doubt."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

from tests.test_worker import Recording, intake, statuses
from tilfreds import worker as worker_module
from tilfreds.clock import FrozenClock
from tilfreds.invitations import jobs
from tilfreds.invitations.models import Invitation, Message, MessagePart
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import (
    Answered,
    Blocking,
    Handover,
    NotTaken,
    OutboundSms,
    Outcome,
    Provider,
    Submitted,
)
from tilfreds.worker import Worker

WINDOW = 4  # worker_window: two windows of two in flight at most


class Killed(BaseException):
    """Stands for SIGKILL: nothing of the worker's main thread runs after it."""


class Watching(Blocking):
    """A provider that checks, as each window is sent, what a crash would find committed; at
    the second window it lets the first window's record go on (held back until then, so it
    cannot happen before), waits until it is committed, and the worker is killed."""

    name = "watching"
    provider = Provider(name="test double", country="NO")
    idempotent = False

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.handed: list[list[int]] = []
        self.in_flight_at_handover: list[int] = []
        self.released = threading.Event()  # the first window's record may go on
        self.unmarked: list[int] = []

    def start(self, events: object) -> None:
        return None

    def _status_counts(self) -> dict[str, int]:
        with self.rt.db.read_only() as session:
            rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
            return {str(status): n for status, n in rows}

    def _committed(self, ids: list[int]) -> list[str]:
        with self.rt.db.read_only() as session:
            return [
                str(s)
                for s in session.execute(
                    select(Message.status).where(Message.id.in_(ids)).order_by(Message.id)
                ).scalars()
            ]

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        if len(self.handed) >= 2:  # the worker is gone: nothing more leaves
            raise Killed
        ids = [int(sms.reference) for sms in window]
        # marked in flight before handed over (an assertion here would be taken for an adapter
        # bug by the worker: collected instead)
        self.unmarked += [
            mid for mid, s in zip(ids, self._committed(ids), strict=True) if s != "sending"
        ]
        self.in_flight_at_handover.append(self._status_counts().get("sending", 0))
        self.handed.append(ids)
        if len(self.handed) == 2:
            first = self.handed[0]
            assert self._committed(first) == ["sending"] * len(first)  # not recorded yet
            self.released.set()
            deadline = time.monotonic() + 10
            while self._committed(first) != ["submitted"] * len(first):
                assert time.monotonic() < deadline, "window 1 was not recorded while 2 was sent"
                time.sleep(0.01)
            raise Killed
        return [Submitted(provider_ids=(f"p{i}",)) for i in ids]


def test_p3_a_crash_while_window_n_is_recorded_and_n_plus_1_is_in_flight_loses_nothing(
    rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt.settings.worker_batch_size, rt.settings.worker_window = 10, WINDOW
    rt.transport = transport = Watching(rt)
    record = worker_module.record_outcomes

    def held_back(*args: Any, **kwargs: Any) -> None:
        # sent and recorded in turn, this wait would run out: the next window is not handed
        # over until the record is done
        if not transport.released.wait(5):
            raise AssertionError("a window's outcomes were recorded before the next was sent")
        record(*args, **kwargs)

    monkeypatch.setattr(worker_module, "record_outcomes", held_back)
    intake(rt, *range(10))
    worker = Worker(rt)
    try:
        worker.run_once()
    except Killed:
        pass
    finally:
        worker.close()
    assert transport.unmarked == []
    # never more than worker_window in flight, counted when each window was handed over
    assert max(transport.in_flight_at_handover) <= WINDOW
    first, second = transport.handed
    assert len(first) == len(second) == WINDOW // 2
    # what the crash left: the first window recorded, the second in flight, the third marked
    # in flight (handed over as the crash came, never sent), the rest only claimed
    with rt.db.unit_of_work() as session:
        recovery = jobs.recover_expired_leases(
            session,
            now=clock.now() + timedelta(seconds=rt.settings.worker_lease_seconds + 1),
            resend_in_doubt=False,
        )
    assert recovery.in_doubt == WINDOW and recovery.failed == 0
    assert recovery.requeued == 10 - WINDOW - len(first)
    with rt.db.read_only() as session:
        by_id = dict(session.execute(select(Message.id, Message.status)).all())
    assert {str(by_id[mid]) for mid in first} == {"submitted"}
    assert {str(by_id[mid]) for mid in second} == {"in_doubt"}  # handed over: never resent
    assert sorted(s for s, _ in statuses(rt)) == sorted(
        ["submitted"] * 2 + ["in_doubt"] * 4 + ["queued"] * 4
    )


class Handing:
    """A provider that takes windows without answering at once (as SMPP does): it logs when a
    window is handed over and when its answers are asked for, and how many messages were in
    flight in the database at each hand-over."""

    name = "handing"
    provider = Provider(name="test double", country="NO")
    idempotent = False

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.events: list[tuple[str, int]] = []
        self.in_flight_at_handover: list[int] = []

    def start(self, events: object) -> None:
        return None

    def close(self) -> None:
        return None

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        return self.hand(window).outcomes()

    def hand(self, window: Sequence[OutboundSms]) -> Handover:
        first = int(window[0].reference)
        with self.rt.db.read_only() as session:
            sending = select(func.count()).where(Message.status == "sending")
            self.in_flight_at_handover.append(session.execute(sending).scalar_one())
        self.events.append(("hand", first))
        answers: list[Outcome] = [Submitted(provider_ids=(f"p{sms.reference}",)) for sms in window]
        return Logged(self.events, first, answers)


class Logged(Answered):
    def __init__(self, events: list[tuple[str, int]], first: int, answers: list[Outcome]) -> None:
        super().__init__(answers)
        self.events, self.first = events, first

    def outcomes(self) -> list[Outcome]:
        self.events.append(("answers", self.first))
        return super().outcomes()


def test_p3_window_n_plus_1_is_handed_over_before_window_n_is_answered(rt: Runtime) -> None:
    """The transport holds the next window while one's answers come (its own window need not
    drain between ours), and never more than ``worker_window`` messages are in flight."""
    rt.settings.worker_batch_size, rt.settings.worker_window = 8, WINDOW
    rt.transport = transport = Handing(rt)
    intake(rt, *range(8))
    Worker(rt).drain()
    firsts = sorted({first for _, first in transport.events})
    assert len(firsts) == 4  # four windows of two
    for earlier, later in itertools.pairwise(firsts):
        assert transport.events.index(("hand", later)) < transport.events.index(
            ("answers", earlier)
        )
    assert max(transport.in_flight_at_handover) <= WINDOW
    assert {str(s) for s, _ in statuses(rt)} == {"submitted"}


class BusyAtSecond(Recording):
    """Takes the first message, then throttles: the second window is not taken."""

    def send(self, sms: OutboundSms) -> Outcome:
        if self.sent:
            return NotTaken("throttled")
        return super().send(sms)


def test_p3_busy_mid_pipeline_gives_back_the_window_marked_ahead_without_an_attempt(
    rt: Runtime,
) -> None:
    """Windows of one: the third message was marked in flight while the second was sent; the
    transport is busy at the second, so both go back to the queue with no attempt used, and
    the first is recorded as submitted."""
    rt.settings.worker_batch_size, rt.settings.worker_window = 4, 2
    rt.transport = transport = BusyAtSecond()
    intake(rt, 1, 2, 3, 4)
    assert Worker(rt).run_once().busy
    assert len(transport.sent) == 1
    with rt.db.read_only() as session:
        rows = session.execute(select(Message.status, Message.attempts).order_by(Message.id))
        assert [(str(s), a) for s, a in rows] == [("submitted", 1)] + [("queued", 0)] * 3


class TooLongAName(Recording):
    """A transport whose name does not fit the parts' and messages' column: on PostgreSQL the
    statements recording a window fail there, after the invitations' update went through."""

    name = "a-transport-named-too-long-to-record"


def test_p3_a_failing_statement_in_a_windows_transaction_rolls_the_whole_window_back(
    rt: Runtime,
) -> None:
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce a column's length; only PostgreSQL pipelines")
    rt.settings.worker_window = 4  # windows of two, the first two marked in flight at the take
    rt.transport = TooLongAName()
    intake(rt, 1, 2, 3, 4, 5, 6)
    with pytest.raises(DataError):  # reported as SQLAlchemy reports it, not psycopg's own error
        Worker(rt).drain()
    # as the take left them: nothing of the window's record (invitations, parts, messages)
    # kept, the next window not marked in flight
    assert [s for s, _ in statuses(rt)] == ["sending"] * 4 + ["claimed"] * 2
    with rt.db.read_only() as session:
        assert set(session.execute(select(Invitation.status)).scalars()) == {"pending"}
        assert session.execute(select(func.count()).select_from(MessagePart)).scalar_one() == 0
    with rt.db.unit_of_work() as session:  # the pooled connection is usable again
        assert session.execute(select(func.count()).select_from(Message)).scalar_one() == 6
