"""Checks run the same way against each HTTP provider's adapter and emulator, with the real
worker and database: throttling keeps messages queued and sends each once (P3), and a STOPP
posted by the provider reaches the invitations domain (P7)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from tests.peers.http_emulator import CallbackRoute, HttpEmulator
from tests.test_worker import intake, statuses
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.models import Invitation, Message
from tilfreds.runtime import Runtime
from tilfreds.sms.http import HttpTransport
from tilfreds.sms.transport import InboundSms
from tilfreds.worker import Worker


def throttled_then_sent_once(
    rt: Runtime, emulator: HttpEmulator, transport: HttpTransport, sent: Callable[[], list[str]]
) -> None:
    """The provider answers 429 to the first pass: nothing is lost, no attempt is used, the
    worker backs off and then each message goes out exactly once; ``sent`` lists the references
    the emulator took."""
    rt.settings.worker_backoff_seconds = 0.01
    rt.transport = transport
    intake(rt, 1, 2, 3)
    emulator.fail_next(429, times=3)
    worker = Worker(rt)
    first = worker.run_once()
    assert first.busy and first.claimed == 3
    with rt.db.read_only() as session:
        rows = session.execute(select(Message)).scalars().all()
        assert {(m.status, m.attempts) for m in rows} == {("queued", 0)}
    worker.drain()
    assert {s for s, _ in statuses(rt)} == {"submitted"}
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
        assert sorted(sent()) == sorted(str(m.id) for m in rows)  # once each
        assert {(m.transport, m.attempts) for m in rows} == {(transport.name, 1)}
        assert all(m.provider_id for m in rows)


def stopp_reaches_invitations(
    rt: Runtime, route: CallbackRoute, emulator: HttpEmulator, inject: Callable[[str], object]
) -> None:
    """A customer answers STOPP; the provider posts it to our inbound URL; what the adapter reads
    is what the invitations domain acts on: the invitation is closed as objected."""
    intake(rt, 1)
    inject("+4740000001")  # interaction_in(1)'s number
    emulator.wait_callbacks()
    [reply] = [e for e in route.events if isinstance(e, InboundSms)]
    with rt.db.unit_of_work() as session:
        outcome = receive_sms(
            session, rt.keys, phone_e164=reply.sender, text=reply.text, now=rt.clock.now()
        )
    assert outcome.kind == "objection" and outcome.closed_invitations == 1
    with rt.db.read_only() as session:
        assert session.execute(select(Invitation.status)).scalar_one() == "objected"
