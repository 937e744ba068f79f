"""The send worker: due messages go out once through the dev transport, eligibility is re-checked
at send time (P7)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import PHONE, interaction_in, interaction_payload
from tilfreds.clock import FrozenClock
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.service import Timing, receive_interaction
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.sms.transport import OutboundSms, Submitted, TransportError
from tilfreds.worker import Worker


def statuses(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.db.read_only() as session:
        return [(m.status, m.skip_reason) for m in session.execute(select(Message)).scalars()]


def test_due_message_reaches_the_dev_phone_with_its_link(client: TestClient, rt: Runtime) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        [sms] = dev.inbox(session, rt.keys)
        invitation = session.execute(select(Invitation)).scalar_one()
        message = session.execute(select(Message)).scalar_one()
    assert sms.phone == PHONE and sms.sender == rt.settings.sms_sender
    assert f"https://survey.example.no/s/{invitation.code}" in sms.body
    assert sms.body.startswith("Hei Kari!") and "STOPP" in sms.body
    assert (message.status, message.sent_at, message.transport) == ("sent", rt.clock.now(), "dev")
    assert invitation.status == "sent"
    assert Worker(rt).drain() == 0  # nothing twice


def test_message_waits_for_its_send_after(rt: Runtime, clock: FrozenClock) -> None:
    with rt.db.unit_of_work() as session:
        receive_interaction(
            session,
            rt.keys,
            interaction_in(),
            timing=Timing(delay=timedelta(minutes=30), valid_for=timedelta(days=7)),
            now=clock.now(),
            actor="test",
        )
    assert Worker(rt).drain() == 0
    clock.advance(timedelta(minutes=30))
    assert Worker(rt).drain() == 1


def test_p7_no_message_after_objection_even_if_already_queued(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/interactions", json=interaction_payload(external_id="first"))
    Worker(rt).drain()
    client.post("/api/v1/interactions", json=interaction_payload(external_id="second"))
    reply = client.post("/api/v1/dev/inbound", json={"from": "+47 412 34 567", "text": "Stopp"})
    assert reply.json() == {"outcome": "objection", "closed_invitations": 2}
    Worker(rt).drain()
    assert sorted(statuses(rt)) == [("sent", None), ("skipped", "invitation_closed")]
    # a new interaction later is never sent either
    client.post("/api/v1/interactions", json=interaction_payload(external_id="third"))
    Worker(rt).drain()
    assert ("skipped", "objected") in statuses(rt)
    with rt.db.read_only() as session:
        assert [m.direction for m in dev.inbox(session, rt.keys)] == ["in", "out"]


def test_other_replies_do_not_object(client: TestClient, rt: Runtime) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    r = client.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "Takk for hjelpen"})
    assert r.json()["outcome"] == "unhandled"
    assert Worker(rt).drain() == 1 and statuses(rt) == [("sent", None)]


class FlakyTransport:
    """A provider that is throttling (ESME_RTHROTTLED) for the first ``fail`` submissions."""

    name = "flaky"

    def __init__(self, fail: int) -> None:
        self.fail, self.sent = fail, []  # type: ignore[var-annotated]

    def send(self, sms: OutboundSms) -> Submitted:
        if self.fail:
            self.fail -= 1
            raise TransportError("throttled", retryable=True)
        self.sent.append(sms)
        return Submitted(provider_id=f"p{len(self.sent)}")


def test_retryable_failure_backs_off_and_is_retried_not_dropped(
    rt: Runtime, clock: FrozenClock
) -> None:
    flaky = FlakyTransport(fail=1)
    rt.transport = flaky
    with rt.db.unit_of_work() as session:
        receive_interaction(
            session, rt.keys, interaction_in(), timing=rt.timing(), now=clock.now(), actor="test"
        )
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
    assert (message.status, message.last_error, message.attempts) == ("queued", "throttled", 1)
    assert message.send_after == clock.now() + timedelta(seconds=30)
    clock.advance(timedelta(seconds=30))
    assert Worker(rt).drain() == 1
    assert statuses(rt) == [("sent", None)] and len(flaky.sent) == 1


def test_message_of_a_dead_worker_is_picked_up_after_its_lease(
    rt: Runtime, clock: FrozenClock
) -> None:
    from tilfreds.invitations import jobs

    with rt.db.unit_of_work() as session:
        receive_interaction(
            session, rt.keys, interaction_in(), timing=rt.timing(), now=clock.now(), actor="test"
        )
        jobs.claim_due(
            session, worker_id="dead", now=clock.now(), limit=10, lease=timedelta(minutes=5)
        )
    assert Worker(rt).drain() == 0
    clock.advance(timedelta(minutes=5, seconds=1))
    assert Worker(rt).drain() == 1
    assert statuses(rt) == [("sent", None)]


class BrokenTransport:
    """An adapter with a bug: the second submission raises something it should not."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, sms: OutboundSms) -> Submitted:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("adapter bug")
        return Submitted(provider_id=f"p{self.calls}")


def test_an_adapter_bug_loses_no_outcome_and_drops_no_message(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.transport = BrokenTransport()
    with rt.db.unit_of_work() as session:
        for n in range(3):
            receive_interaction(
                session, rt.keys, interaction_in(n), timing=rt.timing(), now=clock.now(), actor="t"
            )
    assert Worker(rt).drain() == 3
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [m.status for m in rows] == ["sent", "queued", "sent"]
    assert "adapter bug" in (rows[1].last_error or "")


def test_a_message_whose_workers_keep_dying_fails_instead_of_looping(
    rt: Runtime, clock: FrozenClock
) -> None:
    from tilfreds.invitations import jobs

    with rt.db.unit_of_work() as session:
        receive_interaction(
            session, rt.keys, interaction_in(), timing=rt.timing(), now=clock.now(), actor="t"
        )
    for n in range(jobs.MAX_ATTEMPTS):
        with rt.db.unit_of_work() as session:
            assert jobs.claim_due(
                session, worker_id=f"dies-{n}", now=clock.now(), limit=1, lease=timedelta(minutes=5)
            )
        clock.advance(timedelta(minutes=6))
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
        assert message.status == "failed" and "after 5 attempts" in (message.last_error or "")
        assert dev.inbox(session, rt.keys) == []
