"""Reminders (P2): queued once per sent invitation, each when its survey says, and stopped by an
answer, a decline, an objection (P7), a restriction (P19), erasure or expiry, whether still queued
or already claimed by a worker. On PostgreSQL: two sweeps at once queue each reminder once, and an
objection that arrives while a worker holds that number's reminders stops every one of them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tests.factories import interaction_in
from tests.test_worker import Recording, intake
from tilfreds.clock import FrozenClock
from tilfreds.invitations import jobs, reminders
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.intake import receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.outbox import prepare
from tilfreds.invitations.restriction import restrict
from tilfreds.invitations.service import close_invitation, expire_overdue, find_invitation
from tilfreds.invitations.states import InvitationStatus
from tilfreds.people.models import Person
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.surveys.models import Survey
from tilfreds.worker import Worker

PHONE_1 = interaction_in(1).phone_e164
LEASE = timedelta(minutes=5)


def sent_invitations(rt: Runtime, *numbers: int, fatigue: bool = True) -> Recording:
    if not fatigue:
        rt.settings.fatigue_days = 0
    rt.settings.send_windows = False
    intake(rt, *numbers)
    transport = Recording()
    rt.transport = transport
    Worker(rt).drain()
    transport.sent.clear()
    return transport


def reminder_rows(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.db.read_only() as session:
        rows = session.execute(
            select(Message.status, Message.skip_reason)
            .where(Message.purpose == "reminder")
            .order_by(Message.id)
        ).all()
    return [(status.value, reason) for status, reason in rows]


def queue(rt: Runtime) -> int:
    with rt.db.unit_of_work() as session:
        return reminders.queue_reminders(session, now=rt.clock.now())


def test_p2_reminders_are_queued_once_as_the_survey_says(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        session.execute(update(Survey).values(reminder_count=3, reminder_after_hours=60))
    sent_invitations(rt, 1)
    assert queue(rt) == 2  # the third would be due after the invitation expires (7 days)
    assert queue(rt) == 0  # idempotent
    with rt.db.read_only() as session:
        due = session.execute(
            select(Message.send_after).where(Message.purpose == "reminder").order_by(Message.id)
        ).scalars()
        assert list(due) == [rt.clock.now() + timedelta(hours=60 * n) for n in (1, 2)]


def test_p2_no_reminders_for_a_survey_without_them(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        session.execute(update(Survey).values(reminder_count=0))
    sent_invitations(rt, 1)
    assert queue(rt) == 0 and reminder_rows(rt) == []
    with rt.db.read_only() as session:  # marked, so never looked at again
        assert session.execute(select(Invitation.reminders_queued_at)).scalar_one() is not None


def test_p2_the_reminder_goes_out_with_the_link_and_how_to_object(
    rt: Runtime, clock: FrozenClock
) -> None:
    transport = sent_invitations(rt, 1)
    queue(rt)
    clock.advance(timedelta(hours=71))
    assert Worker(rt).drain() == 0
    clock.advance(timedelta(hours=1))
    assert Worker(rt).drain() == 1
    [sms] = transport.sent
    with rt.db.read_only() as session:
        code = session.execute(select(Invitation.code)).scalar_one()
    # the default survey's own reminder text, in the person's language
    assert sms.body.startswith("Hei igjen! Vi vil gjerne høre") and "STOPP" in sms.body
    assert f"/s/{code}" in sms.body
    assert reminder_rows(rt) == [("submitted", None)]


def _answer(rt: Runtime, session: Session) -> None:
    code = session.execute(select(Invitation.code)).scalar_one()
    responses.submit(
        session,
        code=code,
        form={"csat": "4", "contact": "no"},
        now=rt.clock.now(),
        notice_version="n1",
    )


def _decline(rt: Runtime, session: Session) -> None:
    code = session.execute(select(Invitation.code)).scalar_one()
    found = find_invitation(session, code, lock=True)
    close_invitation(
        session, found.invitation, status=InvitationStatus.DECLINED, now=rt.clock.now()
    )


def _object(rt: Runtime, session: Session) -> None:
    receive_sms(session, rt.keys, phone_e164=PHONE_1, text="STOPP", now=rt.clock.now())


def _restrict(rt: Runtime, session: Session) -> None:
    person = session.execute(select(Person.id)).scalar_one()
    restrict(session, person, now=rt.clock.now(), actor="operator")


def _erase(rt: Runtime, session: Session) -> None:
    session.execute(delete(Person))


def _expire(rt: Runtime, session: Session) -> None:
    session.execute(update(Invitation).values(expires_at=rt.clock.now()))
    expire_overdue(session, now=rt.clock.now())


STOPS: dict[str, tuple[Callable[[Runtime, Session], None], str | None]] = {
    "answer": (_answer, "invitation_answered"),
    "decline": (_decline, "invitation_declined"),
    "objection": (_object, "objection"),
    "restriction": (_restrict, "restriction"),
    "erasure": (_erase, None),  # the person's messages are deleted with them
    "expiry": (_expire, "invitation_expired"),
}


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("when", ["queued", "claimed"])
def test_p2_p7_p19_reminders_stop(rt: Runtime, clock: FrozenClock, stop: str, when: str) -> None:
    """Each of the six events stops a reminder still queued, and one a worker already claimed."""
    transport = sent_invitations(rt, 1)
    queue(rt)
    clock.advance(timedelta(hours=72))
    claimed: list[int] = []
    if when == "claimed":
        with rt.db.unit_of_work() as session:
            claimed = jobs.claim(session, worker_id="w", now=clock.now(), limit=10, lease=LEASE)
        assert len(claimed) == 1
    event, reason = STOPS[stop]
    with rt.db.unit_of_work() as session:
        event(rt, session)
    if claimed:  # the worker that holds it goes on: nothing is handed over
        with rt.db.unit_of_work() as session:
            started = jobs.start_sending(
                session, worker_id="w", ids=claimed, lease_until=clock.now() + LEASE
            )
        assert started == set()
    Worker(rt).drain()
    assert not [sms for sms in transport.sent if "Påminnelse:" in sms.body]
    assert reminder_rows(rt) == ([] if reason is None else [("skipped", reason)])


def test_p2_a_reminder_claimed_when_the_invitation_closes_is_skipped_at_send(
    rt: Runtime, clock: FrozenClock
) -> None:
    """The re-check at send time alone, without the cancel: the invitation was answered."""
    sent_invitations(rt, 1)
    queue(rt)
    clock.advance(timedelta(hours=72))
    with rt.db.unit_of_work() as session:
        [mid] = jobs.claim(session, worker_id="w", now=clock.now(), limit=10, lease=LEASE)
        session.execute(update(Invitation).values(status=InvitationStatus.ANSWERED))
    with rt.db.read_only() as session:
        prepared = prepare(session, rt.keys, [mid], ctx=rt.send_context(), now=clock.now())
    assert prepared.skipped == {mid: "invitation_answered"}


def test_p2_two_sweeps_at_once_queue_each_reminder_once(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs row locks")
    sent_invitations(rt, *range(1, 201))
    start, errors, counts = threading.Barrier(2), [], []

    def sweep() -> None:
        try:
            start.wait(timeout=30)
            with rt.db.unit_of_work() as session:
                counts.append(reminders.queue_reminders(session, now=rt.clock.now(), limit=150))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    counts.append(queue(rt))  # what neither took
    assert errors == [] and sum(counts) == 200
    with rt.db.read_only() as session:
        per_invitation = session.execute(
            select(func.count())
            .select_from(Message)
            .where(Message.purpose == "reminder")
            .group_by(Message.invitation_id)
        ).scalars()
        assert set(per_invitation) == {1}


def _reminders_due_for_one_number(rt: Runtime, clock: FrozenClock) -> Recording:
    """Three sent invitations to PHONE_1 and one to someone else, whose reminder is due first;
    all four reminders due now."""
    rt.settings.fatigue_days = 0
    rt.settings.send_windows = False
    with rt.db.unit_of_work() as session:
        for n, phone in (
            (2, interaction_in(2).phone_e164),
            (3, PHONE_1),
            (4, PHONE_1),
            (5, PHONE_1),
        ):
            receive_interaction(
                session, rt.keys, interaction_in(n, phone_e164=phone),
                timing=rt.timing(), now=clock.now(), actor="t",
            )  # fmt: skip
    transport = Recording()
    rt.transport = transport
    Worker(rt).drain()
    assert queue(rt) == 4
    clock.advance(timedelta(hours=72))
    transport.sent.clear()
    return transport


def _reminders_to(rt: Runtime, phone: str) -> list[tuple[str, str | None]]:
    with rt.db.read_only() as session:
        person = session.execute(
            select(Person.id).where(Person.phone_index == rt.keys.blind_index(phone))
        ).scalar_one()
        rows = session.execute(
            select(Message.status, Message.skip_reason).where(
                Message.purpose == "reminder", Message.person_id == person
            )
        ).all()
    return [(status.value, reason) for status, reason in rows]


def test_p7_an_objection_while_a_worker_holds_the_numbers_reminders_stops_all(
    rt: Runtime, clock: FrozenClock
) -> None:
    """The worker has taken all four, the first (someone else's) in flight and the three to the
    objecting number claimed; the STOPP commits from another connection meanwhile."""
    if rt.db.dialect != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")
    transport = _reminders_due_for_one_number(rt, clock)
    rt.settings.worker_window = 1
    errors: list[BaseException] = []

    def stopp() -> None:
        try:
            with rt.db.unit_of_work() as session:
                receive_sms(session, rt.keys, phone_e164=PHONE_1, text="STOPP", now=clock.now())
        except BaseException as exc:
            errors.append(exc)

    def object_during_the_first_send(_sms: object) -> None:
        if not transport.sent:
            thread = threading.Thread(target=stopp)
            thread.start()
            thread.join(timeout=60)

    transport.before = object_during_the_first_send
    Worker(rt).drain()
    assert errors == []
    to_objector = [sms for sms in transport.sent if sms.to == PHONE_1]
    assert [sms.body.startswith("Du får ikke flere") for sms in to_objector] == [True]
    assert _reminders_to(rt, PHONE_1) == [("skipped", "objection")] * 3
    assert _reminders_to(rt, interaction_in(2).phone_e164) == [("submitted", None)]


def test_p7_an_objection_waits_for_the_claim_that_locks_the_reminders_then_cancels_them(
    rt: Runtime, clock: FrozenClock
) -> None:
    """The STOPP arrives while the claiming transaction is still open: it waits on the row locks,
    then cancels what was claimed; the worker hands none of it over."""
    if rt.db.dialect != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    _reminders_due_for_one_number(rt, clock)
    errors: list[BaseException] = []
    with rt.db.unit_of_work() as session:
        claimed = jobs.claim(session, worker_id="w", now=clock.now(), limit=10, lease=LEASE)
        thread = threading.Thread(target=_stopp_in_own_transaction, args=(rt, clock, errors))
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # blocked on the claimed rows until this commits
    thread.join(timeout=60)
    assert errors == [] and len(claimed) == 4
    with rt.db.unit_of_work() as session:
        started = jobs.start_sending(
            session, worker_id="w", ids=claimed, lease_until=clock.now() + LEASE
        )
    assert len(started) == 1  # only the other person's
    assert _reminders_to(rt, PHONE_1) == [("skipped", "objection")] * 3


def _stopp_in_own_transaction(rt: Runtime, clock: FrozenClock, errors: list[BaseException]) -> None:
    try:
        with rt.db.unit_of_work() as session:
            receive_sms(session, rt.keys, phone_e164=PHONE_1, text="STOPP", now=clock.now())
    except BaseException as exc:
        errors.append(exc)
