"""Eligibility decided again at every send: restriction (P19 send side), the fatigue window, the
send window in the recipient's local time across DST and a Norwegian public holiday (P2), every
reason recorded; and the one confirmation of an objection (P7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from tests.factories import interaction_in
from tests.test_worker import Recording, intake
from tilfreds.audit.models import AuditEntry
from tilfreds.clock import FrozenClock
from tilfreds.invitations import jobs
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.intake import Timing, receive_interaction
from tilfreds.invitations.messages import queue_message
from tilfreds.invitations.models import Message
from tilfreds.invitations.outbox import prepare
from tilfreds.invitations.restriction import lift_restriction, restrict
from tilfreds.invitations.states import MessagePurpose
from tilfreds.invitations.texts import objection_confirmation_sms
from tilfreds.people.models import Person
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

PERSON_1 = interaction_in(1).phone_e164


def messages(rt: Runtime) -> list[tuple[str, str, str | None]]:
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars()
        return [(m.purpose.value, m.status.value, m.skip_reason) for m in rows]


def person_id(rt: Runtime, n: int = 1) -> int:
    with rt.db.read_only() as session:
        return session.execute(select(Person.id).order_by(Person.id).offset(n - 1)).scalar_one()


def recording(rt: Runtime) -> Recording:
    transport = Recording()
    rt.transport = transport
    return transport


def test_p19_restriction_cancels_pending_survey_messages_and_is_audited(rt: Runtime) -> None:
    intake(rt, 1)
    with rt.db.unit_of_work() as session:
        assert restrict(session, person_id(rt), now=rt.clock.now(), actor="operator")
        assert not restrict(session, person_id(rt), now=rt.clock.now(), actor="operator")
        code = queue_message(  # a message the person asked for still goes
            session, rt.keys, purpose=MessagePurpose.IDENTITY_CODE, now=rt.clock.now(),
            person_id=person_id(rt), body="123456",
        )  # fmt: skip
    transport = recording(rt)
    assert Worker(rt).drain() == 1
    assert [sms.reference for sms in transport.sent] == [str(code)]
    assert messages(rt)[0] == ("invitation", "skipped", "restriction")
    with rt.db.read_only() as session:
        actions = session.execute(select(AuditEntry.action, AuditEntry.fields)).all()
    assert ("person.restricted", ["restricted_at"]) in [(a, list(f)) for a, f in actions]


def test_p19_a_message_claimed_before_the_restriction_is_skipped_at_send(rt: Runtime) -> None:
    intake(rt, 1)
    with rt.db.unit_of_work() as session:
        [mid] = jobs.claim(
            session, worker_id="w", now=rt.clock.now(), limit=10, lease=timedelta(minutes=5)
        )
    with rt.db.unit_of_work() as session:  # restricted without the cancel: only the check is left
        session.execute(update(Person).values(restricted_at=rt.clock.now()))
    with rt.db.read_only() as session:
        prepared = prepare(session, rt.keys, [mid], ctx=rt.send_context(), now=rt.clock.now())
    assert (prepared.sendable, prepared.skipped) == ([], {mid: "restriction"})


def test_p19_lifting_the_restriction_lets_later_interactions_be_surveyed(rt: Runtime) -> None:
    intake(rt, 1)
    with rt.db.unit_of_work() as session:
        restrict(session, person_id(rt), now=rt.clock.now(), actor="operator")
    with rt.db.unit_of_work() as session:
        assert lift_restriction(session, person_id(rt), now=rt.clock.now(), actor="operator")
        assert not lift_restriction(session, person_id(rt), now=rt.clock.now(), actor="operator")
    intake_again(rt, 1, "again")
    transport = recording(rt)
    assert Worker(rt).drain() == 1 and len(transport.sent) == 1


def intake_again(rt: Runtime, n: int, external_id: str, **values: object) -> None:
    with rt.db.unit_of_work() as session:
        receive_interaction(
            session,
            rt.keys,
            interaction_in(n, external_id=external_id, **values),
            timing=Timing(delay=timedelta(0), valid_for=timedelta(days=7)),
            now=rt.clock.now(),
            actor="test",
        )


def test_fatigue_one_survey_per_person_per_window_at_send(rt: Runtime, clock: FrozenClock) -> None:
    rt.settings.send_windows = False  # T0 + 30 days is Christmas Day
    intake(rt, 1)
    intake_again(rt, 1, "same-batch")  # two invitations to one person, claimed together
    transport = recording(rt)
    assert Worker(rt).drain() == 2 and len(transport.sent) == 1
    clock.advance(timedelta(days=29))
    intake_again(rt, 1, "29-days-later", occurred_at=clock.now())
    Worker(rt).drain()
    clock.advance(timedelta(days=1))
    intake_again(rt, 1, "30-days-later", occurred_at=clock.now())
    Worker(rt).drain()
    invitations = [m for m in messages(rt) if m[0] == "invitation"]
    assert invitations == [
        ("invitation", "submitted", None),
        ("invitation", "skipped", "fatigue"),
        ("invitation", "skipped", "fatigue"),
        ("invitation", "submitted", None),
    ]


def test_every_reason_is_recorded_objection_first(rt: Runtime) -> None:
    intake(rt, 1)
    with rt.db.unit_of_work() as session:
        [mid] = jobs.claim(
            session, worker_id="w", now=rt.clock.now(), limit=10, lease=timedelta(minutes=5)
        )
        session.execute(update(Person).values(restricted_at=rt.clock.now()))
    with rt.db.unit_of_work() as session:
        receive_sms(session, rt.keys, phone_e164=PERSON_1, text="STOPP", now=rt.clock.now())
        session.execute(update(Message).where(Message.id == mid).values(status="claimed"))
    with rt.db.read_only() as session:
        later = rt.clock.now() + timedelta(days=8)  # and the invitation has expired
        prepared = prepare(session, rt.keys, [mid], ctx=rt.send_context(), now=later)
    assert prepared.skipped == {mid: "objection,restriction,invitation_objected"}


def test_p2_outside_the_window_waits_for_the_next_opening_across_a_holiday(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.settings.send_windows = True
    clock._now = datetime(2027, 5, 16, 19, 30, tzinfo=UTC)  # Sunday 21:30 in Oslo; 17 May next
    intake_again(rt, 1, "sunday-evening", occurred_at=clock.now())
    transport = recording(rt)
    assert Worker(rt).drain() == 1 and transport.sent == []
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
    # Tuesday 18 May, 09:00-10:00 in Oslo (CEST: UTC+2), spread by the message's id
    opening = datetime(2027, 5, 18, 7, 0, tzinfo=UTC)
    assert (message.status, message.claimed_by, message.attempts) == ("queued", None, 0)
    assert opening <= message.send_after < opening + timedelta(hours=1)
    clock._now = message.send_after - timedelta(seconds=1)
    assert Worker(rt).drain() == 0
    clock._now = message.send_after
    assert Worker(rt).drain() == 1 and len(transport.sent) == 1


def test_p2_dst_the_window_opens_at_nine_local_time_after_the_clocks_change(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.settings.send_windows = True
    rt.settings.send_spread_minutes = 0
    clock._now = datetime(2027, 3, 27, 19, 30, tzinfo=UTC)  # Saturday 20:30 CET
    intake_again(rt, 1, "before-dst", occurred_at=clock.now())
    recording(rt)
    Worker(rt).drain()
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
    # Sunday (Easter Day, the clocks go forward), Easter Monday: closed; Tuesday 09:00 CEST
    assert message.send_after == datetime(2027, 3, 30, 7, 0, tzinfo=UTC)


def test_p7_the_confirmation_goes_at_once_even_at_night(rt: Runtime, clock: FrozenClock) -> None:
    rt.settings.send_windows = True
    clock._now = datetime(2027, 5, 17, 1, 0, tzinfo=UTC)  # 03:00 on a holiday in Oslo
    intake_again(rt, 1, "night", occurred_at=clock.now())
    with rt.db.unit_of_work() as session:
        receive_sms(session, rt.keys, phone_e164=PERSON_1, text="Stopp takk", now=clock.now())
    with rt.db.unit_of_work() as session:  # a second STOPP confirms nothing again
        receive_sms(session, rt.keys, phone_e164=PERSON_1, text="STOPP", now=clock.now())
    transport = recording(rt)
    Worker(rt).drain()
    body = objection_confirmation_sms(locale="nb", controller=rt.settings.controller_name)
    assert [(sms.to, sms.body) for sms in transport.sent] == [(PERSON_1, body)]
    assert messages(rt) == [
        ("invitation", "skipped", "objection"),
        ("objection_confirmation", "submitted", None),
    ]


def test_an_erased_persons_messages_go_with_them(rt: Runtime) -> None:
    intake(rt, 1)
    with rt.db.unit_of_work() as session:
        session.execute(delete(Person))
    assert messages(rt) == []


def test_the_outboxs_named_rows_name_the_columns_of_its_read() -> None:
    """The outbox reads its joined rows into plain named tuples; their fields must be the read's
    columns in order, or a decision would read one column for another."""
    from tilfreds.invitations import outbox

    columns = tuple(c.key for c in outbox._joined().selected_columns)
    assert outbox._Taken._fields == columns
