"""Receipts that come while windows are sent (SMPP) are written by the worker's recording
transaction, with the outcomes whose parts they touch (P3): one writer, no lock waits between the
two, and a receipt is acknowledged only once that transaction has committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from tests.test_worker import intake, statuses
from tilfreds import runtime
from tilfreds.invitations.models import MessagePart
from tilfreds.receipt_desk import ReceiptDesk
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import (
    Blocking,
    InboundSms,
    OutboundSms,
    Outcome,
    Provider,
    Receipt,
    ReceiptState,
    Submitted,
    TransportEvents,
)
from tilfreds.worker import Worker


class Sink:
    """Stands for the database: what was written in transactions of their own."""

    def __init__(self, error: Exception | None = None) -> None:
        self.written: list[Sequence[Receipt]] = []
        self.error = error

    def receipts(self, receipts: Sequence[Receipt]) -> None:
        if self.error is not None:
            raise self.error
        self.written.append(receipts)

    def inbound(self, messages: Sequence[InboundSms]) -> None:
        return None


def receipt(pid: str) -> Receipt:
    return Receipt("smsc", pid, ReceiptState.DELIVERED)


def hand_in(desk: ReceiptDesk, receipts: list[Receipt]) -> tuple[threading.Thread, list[object]]:
    """The transport's reader handing receipts over (it waits); what it got back."""
    result: list[object] = []

    def read() -> None:
        try:
            desk.receipts(receipts)
            result.append("acknowledged")
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    return thread, result


def taken(desk: ReceiptDesk) -> list[Any]:
    """What a recording transaction takes, once the reader's batch is on the desk."""
    deadline = time.monotonic() + 10
    while not (batches := desk.take()):
        assert time.monotonic() < deadline, "the receipts never reached the desk"
        time.sleep(0.001)
    return batches


def test_p3_receipts_taken_by_a_transaction_are_acknowledged_once_it_committed() -> None:
    sink = Sink()
    desk = ReceiptDesk(sink, linger=60)
    thread, result = hand_in(desk, [receipt("a")])
    batches = taken(desk)
    assert [r.provider_id for b in batches for r in b.receipts] == ["a"]
    assert result == []  # not acknowledged while the transaction runs
    ReceiptDesk.written(batches)
    thread.join(10)
    assert result == ["acknowledged"] and sink.written == []


def test_p3_receipts_whose_transaction_failed_are_not_acknowledged() -> None:
    desk = ReceiptDesk(Sink(), linger=60)
    thread, result = hand_in(desk, [receipt("a")])
    ReceiptDesk.written(taken(desk), RuntimeError("rolled back"))
    thread.join(10)
    assert [str(e) for e in result] == ["rolled back"]  # the SMSC delivers them again


def test_p3_receipts_no_transaction_takes_are_written_by_the_reader() -> None:
    sink = Sink()
    ReceiptDesk(sink, linger=0).receipts([receipt("a")])
    assert [[r.provider_id for r in batch] for batch in sink.written] == [["a"]]
    with pytest.raises(OSError):
        ReceiptDesk(Sink(OSError("database down")), linger=0).receipts([receipt("b")])


class Smsc(Blocking):
    """Answers each window and, as an SMSC does, sends its receipts at once on a thread of its
    own: they reach the events sink before the worker records the window's outcomes."""

    name = "smsc"
    provider = Provider(name="test double", country="NO")
    idempotent = False
    receipts_meanwhile = True

    def __init__(self) -> None:
        self.events: TransportEvents | None = None
        self.readers: list[threading.Thread] = []
        self.taken: list[Sequence[Receipt]] = []

    def start(self, events: TransportEvents) -> None:
        self.events = events
        if isinstance(events, ReceiptDesk):  # which batches the worker's transactions took
            take = events.take

            def taking() -> list[Any]:
                batches = take()
                self.taken += [b.receipts for b in batches]
                return batches

            events.take = taking  # type: ignore[method-assign]

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        assert self.events is not None
        receipts = [receipt(f"p{sms.reference}") for sms in window]
        reader = threading.Thread(target=self.events.receipts, args=(receipts,))
        reader.start()
        self.readers.append(reader)
        if isinstance(desk := self.events, ReceiptDesk):  # on the desk before the answers
            deadline = time.monotonic() + 10
            while not any(
                r is receipts for r in [*(b.receipts for b in desk._waiting), *self.taken]
            ):
                assert time.monotonic() < deadline
                time.sleep(0.001)
        return [Submitted(provider_ids=(f"p{sms.reference}",)) for sms in window]

    def _seen(self, desk: ReceiptDesk) -> list[Sequence[Receipt]]:
        return [*(b.receipts for b in desk._waiting), *self.taken]


def test_p3_receipts_that_overtake_the_outcomes_are_written_with_them_on_postgres(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every window's receipts are written by the transaction recording that window, none in
    a transaction of its own; all are delivered, each part linked to its message."""
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's in-process worker writes receipts apart: one writer anyway")
    apart: list[int] = []
    recorded = runtime.record_receipts

    def counted(session: Any, receipts: Sequence[Receipt], **kwargs: Any) -> Any:
        apart.append(len(receipts))
        return recorded(session, receipts, **kwargs)

    monkeypatch.setattr(runtime, "record_receipts", counted)
    rt.settings.worker_batch_size, rt.settings.worker_window = 8, 4
    rt.transport = transport = Smsc()
    intake(rt, *range(8))
    Worker(rt).drain()
    for reader in transport.readers:
        reader.join(10)
    assert apart == []
    assert {s for s, _ in statuses(rt)} == {"delivered"}
    with rt.db.read_only() as session:
        states = session.execute(select(MessagePart.state, MessagePart.message_id)).all()
    assert len(states) == 8 and all(s == "delivered" and m is not None for s, m in states)
