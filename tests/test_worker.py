"""The send worker: due messages go out once, eligibility is re-checked at send time (P7), a
crash or a pause leaves only what was in flight in doubt, and one bad row fails alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import PHONE, interaction_in, interaction_payload
from tilfreds.clock import FrozenClock
from tilfreds.invitations import jobs
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.intake import Timing, receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Person
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.sms.transport import (
    NotTaken,
    OutboundSms,
    Outcome,
    PerMessage,
    Provider,
    Rejected,
    Submitted,
)
from tilfreds.worker import Worker


def statuses(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.db.read_only() as session:
        # reminders the sweep queues are tested in test_reminders.py
        rows = session.execute(
            select(Message).where(Message.purpose != "reminder").order_by(Message.id)
        ).scalars()
        return [(m.status.value, m.skip_reason) for m in rows]


def intake(rt: Runtime, *numbers: int, **timing: timedelta) -> None:
    with rt.db.unit_of_work() as session:
        for n in numbers:
            receive_interaction(
                session,
                rt.keys,
                interaction_in(n),
                timing=Timing(**{"delay": timedelta(0), "valid_for": timedelta(days=7), **timing}),
                now=rt.clock.now(),
                actor="test",
            )


class Recording(PerMessage):
    """A provider that takes everything and remembers it; ``before`` runs before each send."""

    name = "recording"
    provider = Provider(name="test double", country="NO")
    idempotent = False

    def __init__(self, before: Callable[[OutboundSms], None] | None = None) -> None:
        self.sent: list[OutboundSms] = []
        self.before = before

    def send(self, sms: OutboundSms) -> Outcome:
        if self.before:
            self.before(sms)
        self.sent.append(sms)
        return Submitted(provider_ids=(f"p{len(self.sent)}",))


def test_p3_dev_transport_gets_a_due_message_with_its_link_and_reports_it_delivered(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        [sms] = dev.inbox(session, rt.keys)
        invitation = session.execute(select(Invitation)).scalar_one()
        message = session.execute(select(Message)).scalar_one()
    assert sms.phone == PHONE and sms.sender == rt.settings.sms_sender
    assert f"https://survey.example.no/s/{invitation.code}" in sms.body
    assert sms.body.startswith("Hei Kari!") and "STOPP" in sms.body
    assert (message.status, message.submitted_at, message.transport) == (
        "delivered",  # the dev phone's receipt, recorded as a real one would be
        rt.clock.now(),
        "dev",
    )
    assert (message.delivered_at, message.segments, message.encoding) == (
        rt.clock.now(),
        1,
        "GSM-7",
    )
    assert (message.attempts, invitation.status) == (1, "sent")
    assert Worker(rt).drain() == 0  # nothing twice


def test_message_waits_for_its_send_after(rt: Runtime, clock: FrozenClock) -> None:
    intake(rt, 1, delay=timedelta(minutes=30))
    assert Worker(rt).drain() == 0
    clock.advance(timedelta(minutes=30))
    assert Worker(rt).drain() == 1


def test_p7_no_message_after_objection_even_if_already_queued(
    client: TestClient, rt: Runtime
) -> None:
    rt.settings.fatigue_days = 0  # the same number is invited twice
    client.post("/api/v1/interactions", json=interaction_payload(external_id="first"))
    Worker(rt).drain()
    client.post("/api/v1/interactions", json=interaction_payload(external_id="second"))
    reply = client.post("/api/v1/dev/inbound", json={"from": "+47 412 34 567", "text": "Stopp"})
    assert reply.json() == {"outcome": "objection"}
    Worker(rt).drain()
    assert statuses(rt) == [("delivered", None), ("skipped", "objection"), ("delivered", None)]
    # a new interaction later is recorded as skipped and nothing is queued for it
    third = client.post("/api/v1/interactions", json=interaction_payload(external_id="third"))
    assert third.json()["outcome"] == "skipped" and third.json()["skip_reasons"] == ["objection"]
    assert Worker(rt).drain() == 0 and len(statuses(rt)) == 3
    with rt.db.read_only() as session:  # the invitation, the STOPP, its one confirmation
        inbox = sorted(m.direction for m in dev.inbox(session, rt.keys))
        assert inbox == ["in", "out", "out"]


def test_p7_an_objection_while_the_message_is_claimed_stops_it(rt: Runtime) -> None:
    """Two invitations for one number in one batch; the number objects while the first is being
    sent, after the worker claimed both: the second never goes out."""
    rt.settings.worker_window = 1
    rt.settings.fatigue_days = 0  # two invitations to one person in one batch, deliberately
    with rt.db.unit_of_work() as session:
        for n in (1, 2):
            receive_interaction(
                session,
                rt.keys,
                interaction_in(n, phone_e164=PHONE),
                timing=rt.timing(),
                now=rt.clock.now(),
                actor="t",
            )

    def object_once(_sms: OutboundSms) -> None:
        if not transport.sent:
            with rt.db.unit_of_work() as session:
                receive_sms(session, rt.keys, phone_e164=PHONE, text="STOPP", now=rt.clock.now())

    transport = Recording(before=object_once)
    rt.transport = transport
    assert Worker(rt).drain() == 3  # the two, then the objection's confirmation
    assert len(transport.sent) == 2
    assert statuses(rt) == [("submitted", None), ("skipped", "objection"), ("submitted", None)]


def test_other_replies_do_not_object(client: TestClient, rt: Runtime) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    r = client.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "Takk for hjelpen"})
    assert r.json()["outcome"] == "reply"
    assert Worker(rt).drain() == 1 and statuses(rt) == [("delivered", None)]


class Busy(Recording):
    """A provider that throttles (ESME_RTHROTTLED) for its first ``busy`` submissions."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy

    def send(self, sms: OutboundSms) -> Outcome:
        if self.busy:
            self.busy -= 1
            return NotTaken("throttled")
        return super().send(sms)


def test_a_busy_transport_backs_the_worker_off_and_uses_up_no_attempt(rt: Runtime) -> None:
    rt.settings.worker_backoff_seconds = 0.01
    busy = Busy(busy=3)
    rt.transport = busy
    intake(rt, 1, 2, 3)
    worker = Worker(rt)
    first = worker.run_once()
    assert first.busy and first.claimed == 3
    with rt.db.read_only() as session:
        rows = session.execute(select(Message)).scalars().all()
    assert {(m.status, m.attempts, m.last_error) for m in rows} == {("queued", 0, None)}
    worker.drain()  # backs off while busy (claiming again each time), then sends everything
    assert len(busy.sent) == 3 and {s for s, _ in statuses(rt)} == {"submitted"}
    with rt.db.read_only() as session:
        assert {m.attempts for m in session.execute(select(Message)).scalars()} == {1}


class Rejecting(Recording):
    def __init__(self, permanent: bool) -> None:
        super().__init__()
        self.permanent = permanent

    def send(self, sms: OutboundSms) -> Outcome:
        return Rejected("invalid destination", permanent=self.permanent)


def test_a_temporary_rejection_is_retried_with_back_off_until_it_gives_up(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.transport = Rejecting(permanent=False)
    intake(rt, 1)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        assert Worker(rt).drain() == 1
        with rt.db.read_only() as session:
            message = session.execute(select(Message)).scalar_one()
        assert message.attempts == attempt and message.last_error == "invalid destination"
        if attempt < jobs.MAX_ATTEMPTS:
            assert message.status == "queued"
            assert message.send_after == clock.now() + jobs.RETRY_BASE * 2 ** (attempt - 1)
            clock.advance(jobs.RETRY_BASE * 2 ** (attempt - 1))
    assert message.status == "failed"


def test_a_permanent_rejection_fails_at_once(rt: Runtime) -> None:
    rt.transport = Rejecting(permanent=True)
    intake(rt, 1)
    assert Worker(rt).drain() == 1
    assert statuses(rt) == [("failed", None)]


def test_a_row_that_cannot_be_opened_fails_alone_with_its_own_reason(rt: Runtime) -> None:
    intake(rt, 1, 2, 3)
    with rt.db.unit_of_work() as session:  # a ciphertext copied into another row
        people = session.execute(select(Person).order_by(Person.id)).scalars().all()
        people[1].name_cipher = people[0].name_cipher
    transport = Recording()
    rt.transport = transport
    assert Worker(rt).drain() == 3
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [m.status for m in rows] == ["submitted", "failed", "submitted"]
    assert "cannot open its stored data" in (rows[1].last_error or "")
    assert len(transport.sent) == 2


def test_an_adapter_bug_loses_no_outcome_and_drops_no_message(rt: Runtime) -> None:
    def bug_on_second(_sms: OutboundSms) -> None:
        if len(transport.sent) == 1 and not bugs:
            bugs.append(1)
            raise RuntimeError("adapter bug")

    bugs: list[int] = []
    transport = Recording(before=bug_on_second)
    rt.transport = transport
    intake(rt, 0, 1, 2)
    assert Worker(rt).drain() == 3
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [m.status for m in rows] == ["submitted", "queued", "submitted"]
    assert "adapter bug" in (rows[1].last_error or "")


def test_claimed_messages_of_a_dead_worker_are_requeued_after_its_lease(
    rt: Runtime, clock: FrozenClock
) -> None:
    intake(rt, 1)
    with rt.db.unit_of_work() as session:
        jobs.claim(session, worker_id="dead", now=clock.now(), limit=10, lease=timedelta(minutes=5))
    assert Worker(rt).drain() == 0
    clock.advance(timedelta(minutes=5, seconds=1))
    assert Worker(rt).drain() == 1
    assert statuses(rt) == [("delivered", None)]


def _in_flight_when_worker_died(rt: Runtime, clock: FrozenClock) -> None:
    intake(rt, 1)
    lease = timedelta(minutes=5)
    with rt.db.unit_of_work() as session:
        ids = jobs.claim(session, worker_id="dead", now=clock.now(), limit=10, lease=lease)
        jobs.start_sending(session, worker_id="dead", ids=ids, lease_until=clock.now() + lease)
    clock.advance(lease + timedelta(seconds=1))


def test_a_message_in_flight_at_a_crash_is_in_doubt_and_not_resent_by_default(
    rt: Runtime, clock: FrozenClock
) -> None:
    _in_flight_when_worker_died(rt, clock)
    transport = Recording()
    rt.transport = transport
    assert Worker(rt).drain() == 0
    assert transport.sent == []
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
    assert message.status == "in_doubt"
    assert message.last_error == "its worker stopped while it was in flight"


def test_in_doubt_messages_are_resent_when_the_setting_says_so(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.settings.resend_in_doubt = True
    _in_flight_when_worker_died(rt, clock)
    transport = Recording()
    rt.transport = transport
    assert Worker(rt).drain() == 1 and len(transport.sent) == 1
    assert statuses(rt) == [("submitted", None)]


def test_the_dev_transport_takes_an_in_doubt_message_again_without_a_duplicate(
    rt: Runtime, clock: FrozenClock
) -> None:
    _in_flight_when_worker_died(rt, clock)
    with rt.db.read_only() as session:  # the dead worker had reached the phone
        from tilfreds.invitations.outbox import prepare

        ids = [m.id for m in session.execute(select(Message)).scalars()]
        [sms] = prepare(session, rt.keys, ids, ctx=rt.send_context(), now=clock.now()).sendable
    rt.transport.send_window([sms])
    assert Worker(rt).drain() == 1
    assert statuses(rt) == [("delivered", None)]
    with rt.db.read_only() as session:
        assert len(dev.inbox(session, rt.keys)) == 1


def test_a_message_whose_workers_keep_dying_fails_instead_of_looping(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.settings.resend_in_doubt = True
    intake(rt, 1)
    lease = timedelta(minutes=5)
    for n in range(jobs.MAX_ATTEMPTS):
        with rt.db.unit_of_work() as session:
            jobs.recover_expired_leases(session, now=clock.now(), resend_in_doubt=True)
            ids = jobs.claim(session, worker_id=f"dies-{n}", now=clock.now(), limit=1, lease=lease)
            assert jobs.start_sending(
                session, worker_id=f"dies-{n}", ids=ids, lease_until=clock.now() + lease
            )
        clock.advance(lease + timedelta(seconds=1))
    assert Worker(rt).drain() == 0
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
        assert message.status == "failed" and "after 5 attempts" in (message.last_error or "")
        assert dev.inbox(session, rt.keys) == []


def test_a_batch_slower_than_the_lease_is_never_claimed_twice(
    rt: Runtime, clock: FrozenClock
) -> None:
    """Each send takes 4 s of the worker's clock, the batch 40 s, the lease is 10 s: a second
    worker polling between sends finds nothing to take, and every message goes out once."""
    rt.settings.worker_lease_seconds = 10
    rt.settings.worker_window = 2
    rt.settings.worker_sweep_seconds = 0.0  # the second worker sweeps for dead leases every pass
    intake(rt, *range(10))
    other_sent: list[OutboundSms] = []

    def slow(_sms: OutboundSms) -> None:
        clock.advance(timedelta(seconds=4))
        other_rt = Runtime(
            settings=rt.settings,
            db=rt.db,
            keys=rt.keys,
            clock=rt.clock,
            transport=Recording(before=other_sent.append),
        )
        assert Worker(other_rt, worker_id="poller").run_once().claimed == 0

    transport = Recording(before=slow)
    rt.transport = transport
    assert Worker(rt).drain() == 10
    assert len(transport.sent) == 10 and other_sent == []
    assert {s for s, _ in statuses(rt)} == {"submitted"}


def test_the_sweep_marks_invitations_expired_and_cancels_their_messages(
    rt: Runtime, clock: FrozenClock
) -> None:
    intake(rt, 1, delay=timedelta(days=8))
    clock.advance(timedelta(days=7))
    assert Worker(rt).drain() == 0
    with rt.db.read_only() as session:
        invitation = session.execute(select(Invitation)).scalar_one()
    assert (invitation.status, invitation.closed_at) == ("expired", clock.now())
    assert statuses(rt) == [("skipped", "invitation_expired")]


@pytest.mark.parametrize("status", ["queued", "claimed"])
def test_an_answer_cancels_messages_not_yet_handed_over(rt: Runtime, status: str) -> None:
    from tilfreds.responses import service as responses

    intake(rt, 1, delay=timedelta(hours=1))
    with rt.db.unit_of_work() as session:
        session.execute(update(Message).values(status=status, claimed_by="w"))
        code = session.execute(select(Invitation.code)).scalar_one()
        responses.submit(
            session,
            code=code,
            form={"csat": "4", "contact": "no"},
            now=rt.clock.now(),
            notice_version="n1",
        )
    assert statuses(rt) == [("skipped", "invitation_answered")]
