"""Delivery receipts settle a message's status (P3): delivered only when every segment is, never
moved back by a late or repeated receipt, applied when it came before the submit response or for
an id we learn only later; a lost answer marks the message in doubt at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import interaction_payload
from tests.test_worker import intake
from tilfreds.clock import FrozenClock
from tilfreds.invitations import settling
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.invitations.receipts import unmatched
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import (
    InDoubt,
    OutboundSms,
    Outcome,
    PerMessage,
    Provider,
    Receipt,
    ReceiptState,
    Submitted,
    TransportEvents,
)
from tilfreds.sweep import UNMATCHED_AFTER
from tilfreds.worker import Worker

D, F, X, E = (
    ReceiptState.DELIVERED,
    ReceiptState.FAILED,
    ReceiptState.EXPIRED,
    ReceiptState.ENROUTE,
)


class Segmented(PerMessage):
    """Takes each message in ``segments`` parts with ids ``s<reference>-<n>``; ``early`` receipts
    are reported through the events sink before the submit is answered (as SMPP can)."""

    name = "seg"
    provider = Provider(name="test SMSC", country="SE")

    def __init__(self, segments: int = 2, early: ReceiptState | None = None) -> None:
        self.segments, self.early = segments, early
        self.events: TransportEvents | None = None

    def start(self, events: TransportEvents) -> None:
        self.events = events

    def send(self, sms: OutboundSms) -> Outcome:
        ids = tuple(f"s{sms.reference}-{n}" for n in range(self.segments))
        if self.early is not None and self.events is not None:
            self.events.receipts([Receipt(self.name, pid, self.early) for pid in ids])
        return Submitted(provider_ids=ids, segments=self.segments, encoding="UCS-2")


def receipts(rt: Runtime, *items: tuple[str, ReceiptState], code: str | None = None) -> None:
    rt.events.receipts([Receipt("seg", pid, state, error_code=code) for pid, state in items])


def messages(rt: Runtime) -> list[Message]:
    with rt.db.read_only() as session:
        return list(session.execute(select(Message).order_by(Message.id)).scalars())


def sent(rt: Runtime, n: int = 1, **transport: object) -> list[int]:
    intake(rt, *range(1, n + 1))
    rt.transport = Segmented(**transport)  # type: ignore[arg-type]
    assert Worker(rt).drain() == n
    return [m.id for m in messages(rt)]


def status(rt: Runtime) -> list[str]:
    return [m.status.value for m in messages(rt)]


def test_p3_a_message_in_two_segments_is_delivered_only_when_both_are(rt: Runtime) -> None:
    [mid] = sent(rt)
    receipts(rt, (f"s{mid}-1", D))
    assert status(rt) == ["submitted"]
    receipts(rt, (f"s{mid}-0", E))
    assert status(rt) == ["submitted"]
    receipts(rt, (f"s{mid}-0", D))
    [m] = messages(rt)
    assert (m.status, m.segments, m.encoding) == ("delivered", 2, "UCS-2")
    assert m.delivered_at == rt.clock.now() and m.failed_at is None


def test_p3_one_failed_segment_fails_the_message_with_its_error_code(rt: Runtime) -> None:
    first, second = sent(rt, 2)
    receipts(rt, (f"s{first}-0", D), (f"s{first}-1", F), code="0x0000000B")
    receipts(rt, (f"s{second}-0", X))
    [a, b] = messages(rt)
    assert (a.status, a.error_code, a.failed_at) == ("failed", "0x0000000B", rt.clock.now())
    assert (b.status, b.error_code) == ("expired", None)


def test_p3_receipts_twice_or_out_of_order_never_move_a_message_back(rt: Runtime) -> None:
    [mid] = sent(rt)
    both = ((f"s{mid}-0", D), (f"s{mid}-1", D))
    receipts(rt, *both)
    receipts(rt, *both)  # delivered twice
    receipts(rt, (f"s{mid}-0", E), (f"s{mid}-1", E))  # an intermediate state, late
    receipts(rt, (f"s{mid}-1", F))  # noise after delivery
    [m] = messages(rt)
    assert m.status == "delivered" and m.error_code is None
    with rt.db.read_only() as session:
        states = session.execute(select(MessagePart.state).order_by(MessagePart.id)).scalars()
        assert list(states) == ["delivered", "delivered"]


def test_p3_an_enroute_receipt_in_one_batch_with_the_final_one_keeps_the_final(
    rt: Runtime,
) -> None:
    [mid] = sent(rt, segments=1)
    rt.events.receipts(
        [Receipt("seg", f"s{mid}-0", D), Receipt("seg", f"s{mid}-0", E)]  # in one call
    )
    assert status(rt) == ["delivered"]


def test_p3_a_receipt_before_the_submit_response_is_applied_when_it_is_recorded(
    rt: Runtime,
) -> None:
    sent(rt, 3, early=D)
    assert status(rt) == ["delivered"] * 3
    with rt.db.read_only() as session:
        assert unmatched(session, older_than=rt.clock.now() + timedelta(days=1)) == 0


class EarlyAfterTheFirst(Segmented):
    """Receipts before the submit response for every message but the first."""

    def send(self, sms: OutboundSms) -> Outcome:
        self.early = None if sms.reference == self.first else D
        return super().send(sms)


def test_p3_a_receipt_that_came_first_after_windows_without_is_still_applied(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows of one. The first has no early receipt, so the next is recorded without settling
    in its sync (PostgreSQL); its receipt did come first and is applied after the sync."""
    rt.settings.worker_batch_size, rt.settings.worker_window = 4, 2
    after: list[set[int]] = []  # settled after the sync, not in it
    settle = settling.settle
    monkeypatch.setattr(
        settling,
        "settle",
        lambda session, ids, **kw: after.append(set(ids)) or settle(session, ids, **kw),
    )
    intake(rt, 1, 2, 3, 4)
    rt.transport = transport = EarlyAfterTheFirst(early=D)
    transport.first = str(min(m.id for m in messages(rt)))
    assert Worker(rt).drain() == 4
    assert status(rt) == ["submitted", "delivered", "delivered", "delivered"]
    if rt.db.dialect == "postgresql":  # the second was settled after its window's sync
        assert int(transport.first) + 1 in set().union(*after)


def test_p3_a_receipt_for_an_unknown_id_is_kept_and_applied_when_the_id_shows_up(
    rt: Runtime,
) -> None:
    intake(rt, 1)
    [mid] = [m.id for m in messages(rt)]
    receipts(rt, (f"s{mid}-0", D), ("never-ours", F))
    with rt.db.read_only() as session:
        assert unmatched(session, older_than=rt.clock.now() + timedelta(seconds=1)) == 2
    receipts(rt, (f"s{mid}-0", E))  # a late intermediate one for the unknown id: ignored
    rt.transport = Segmented(segments=1)
    assert Worker(rt).drain() == 1
    assert status(rt) == ["delivered"]
    with rt.db.read_only() as session:  # the stranger stays, for reconciliation
        assert unmatched(session, older_than=rt.clock.now() + timedelta(seconds=1)) == 1


class Lost(PerMessage):
    name = "lost"
    provider = Provider(name="test SMSC", country="NO")

    def send(self, sms: OutboundSms) -> Outcome:
        return InDoubt("the connection dropped before the answer")


def test_an_in_doubt_outcome_is_marked_at_once_not_left_for_the_sweep(rt: Runtime) -> None:
    intake(rt, 1, 2)
    rt.transport = Lost()
    assert Worker(rt).drain() == 2
    rows = messages(rt)
    assert [m.status for m in rows] == ["in_doubt", "in_doubt"]
    assert all(m.lease_until is None and m.last_error for m in rows)


def test_p3_a_receipt_naming_our_reference_settles_a_message_left_in_doubt(
    rt: Runtime,
) -> None:
    intake(rt, 1, 2)
    rt.transport = Lost()
    Worker(rt).drain()
    first = messages(rt)[0].id
    rt.events.receipts(
        [
            Receipt("seg", "lost-1", D, reference=str(first)),
            Receipt("seg", "lost-2", D, reference="999999"),  # no message of ours
            Receipt("seg", "lost-3", D, reference=str(2**40)),  # no message id at all
            Receipt("seg", "lost-4", D, reference="x٣"),
        ]
    )
    assert status(rt) == ["delivered", "in_doubt"]
    with rt.db.read_only() as session:
        assert unmatched(session, older_than=rt.clock.now() + timedelta(seconds=1)) == 3


def test_an_in_doubt_outcome_is_queued_again_when_resending_is_configured(rt: Runtime) -> None:
    rt.settings.resend_in_doubt = True
    intake(rt, 1)
    rt.transport = Lost()
    worker = Worker(rt)
    assert worker.run_once().claimed == 1
    assert status(rt) == ["queued"]


def test_p3_the_interaction_shows_what_the_provider_said(client: TestClient, rt: Runtime) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    rt.transport = Segmented()
    Worker(rt).drain()
    [mid] = [m.id for m in messages(rt)]
    receipts(rt, (f"s{mid}-0", D), (f"s{mid}-1", D))
    [shown] = client.get("/api/v1/interactions/case-1001-call-1").json()["messages"]
    assert shown["status"] == "delivered" and shown["provider_id"] == f"s{mid}-0"
    assert shown["provider_ids"] == [f"s{mid}-0", f"s{mid}-1"]
    assert (shown["segments"], shown["encoding"], shown["error_code"]) == (2, "UCS-2", None)
    assert shown["delivered_at"] and shown["failed_at"] is None


def test_p3_a_receipt_that_stays_unmatched_is_reported_once_by_the_sweep(
    rt: Runtime, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    receipts(rt, ("from-another-system", D))
    worker = Worker(rt)
    with caplog.at_level("WARNING", logger="tilfreds.worker"):
        worker.sweep()  # too young to be a stranger: it may be overtaking its submit answer
        clock.advance(UNMATCHED_AFTER + timedelta(seconds=1))
        worker.sweep()
        clock.advance(timedelta(seconds=rt.settings.worker_sweep_seconds))
        worker.sweep()
    assert caplog.text.count("1 more delivery receipts match no message") == 1
