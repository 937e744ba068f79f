"""Two-way SMS surveys through the dev transport: the invitation asks the first question, each
reply is read by the question's kind and answered with the next question, a garbled reply is asked
again, the answers are stored at the end with the version, the consent and its notice version
(P4, P5, P9), and STOPP at any point is an objection after which nothing more is sent (P7)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import interaction_in
from tests.test_worker import intake
from tests.two_way import two_way_definition, use_two_way_survey
from tilfreds.audit.models import AuditEntry
from tilfreds.clock import FrozenClock
from tilfreds.invitations import reminders
from tilfreds.invitations.conversation import SmsConversation
from tilfreds.invitations.inbound import receive_dev_reply, receive_sms
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Interaction
from tilfreds.people.service import is_suppressed
from tilfreds.responses.models import Response
from tilfreds.responses.service import submit
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.surveys.models import SurveyVersion
from tilfreds.worker import Worker

PHONE = interaction_in(1).phone_e164
CSAT_NB = "Hvor fornøyd er du med hvordan {c} behandlet saken din? Svar 1-5 (1 = svært misfornøyd, 5 = svært fornøyd)."  # noqa: E501
CONTACT_NB = "Kan vi kontakte deg om tilbakemeldingen din? Svar JA eller NEI."


def invited(rt: Runtime) -> None:
    use_two_way_survey(rt)
    intake(rt, 1)
    assert Worker(rt).drain() == 1


def say(rt: Runtime, text: str, *, drain: bool = True) -> str:
    """A reply from the person's phone a minute later; returns what it was taken as."""
    assert isinstance(rt.clock, FrozenClock)
    rt.clock.advance(timedelta(minutes=1))
    with rt.db.unit_of_work() as session:
        outcome = receive_dev_reply(
            session, rt.keys, phone_e164=PHONE, our_number=rt.settings.sms_sender, text=text,
            now=rt.clock.now(), replies=rt.reply_context(),
        )  # fmt: skip
    if drain:
        Worker(rt).drain()
    return outcome.kind


def phone_shows(rt: Runtime) -> list[str]:
    """The texts we sent to the phone, oldest first."""
    with rt.db.read_only() as session:
        return [m.body for m in reversed(dev.inbox(session, rt.keys)) if m.direction == "out"]


def conversation(rt: Runtime) -> SmsConversation:
    with rt.db.read_only() as session:
        return session.execute(select(SmsConversation)).scalar_one()


def responses(rt: Runtime) -> list[Response]:
    with rt.db.read_only() as session:
        return list(session.execute(select(Response)).scalars())


def test_p7_the_two_way_invitation_asks_the_first_question_and_says_how_to_object(
    rt: Runtime,
) -> None:
    invited(rt)
    csat = CSAT_NB.format(c=rt.settings.controller_name)
    assert phone_shows(rt) == [f"Hei Person! {csat} Svar STOPP for å reservere deg."]


def test_p4_p5_p9_a_whole_conversation_is_stored_with_its_version_consent_and_time(
    rt: Runtime,
) -> None:
    invited(rt)
    assert say(rt, "2") == "answer"
    assert phone_shows(rt)[-1] == "Hva kunne vi gjort bedre?"  # show_if: csat at most 3
    assert say(rt, "Ventetiden på telefon") == "answer"
    assert phone_shows(rt)[-1] == CONTACT_NB
    assert say(rt, "Ja, gjerne") == "answered"
    assert phone_shows(rt)[-1] == "Takk for svaret!"
    [response] = responses(rt)
    with rt.db.read_only() as session:
        version = session.execute(
            select(SurveyVersion.id).order_by(SurveyVersion.id.desc()).limit(1)
        ).scalar_one()
        interaction = session.execute(select(Interaction.id)).scalar_one()
        invitation = session.execute(select(Invitation.status)).scalar_one()
    assert (response.survey_version_id, response.interaction_id) == (version, interaction)
    assert response.submitted_at == rt.clock.now()  # P9: the time of the last answer
    assert (response.contact_consent, response.notice_version) == (
        True,
        rt.settings.notice_version,
    )
    assert {(a.question_key, a.value_int, a.value_text) for a in response.answers} == {
        ("csat", 2, None),
        ("improve", None, "Ventetiden på telefon"),
        ("contact", 1, "gjerne"),
    }
    assert invitation == "answered"
    assert (conversation(rt).status, conversation(rt).answers) == ("answered", None)
    assert say(rt, "Takk selv!") == "unhandled"  # after the end: nothing more is sent
    assert len(phone_shows(rt)) == 4


def test_p8_a_garbled_reply_is_asked_again_and_nei_to_contact_is_an_answer(rt: Runtime) -> None:
    invited(rt)
    assert say(rt, "hæ? hvem er dette") == "reask"
    csat = CSAT_NB.format(c=rt.settings.controller_name)
    assert phone_shows(rt)[-1] == (
        f"Beklager, det svaret forsto vi ikke. {csat} Svar STOPP for å reservere deg."
    )
    assert say(rt, "fem") == "answer"
    assert phone_shows(rt)[-1] == CONTACT_NB
    assert say(rt, "Nei") == "answered"
    [response] = responses(rt)
    assert response.contact_consent is False
    assert {a.question_key: a.value_int for a in response.answers} == {"csat": 5, "contact": 0}
    with rt.db.read_only() as session:  # "Nei" to the consent question objected to nothing
        assert not is_suppressed(session, rt.keys.blind_indexes(PHONE))


def test_p7_stopp_midway_is_an_objection_and_nothing_more_is_sent(rt: Runtime) -> None:
    invited(rt)
    assert say(rt, "4", drain=False) == "answer"  # the next question waits in the queue
    assert say(rt, "STOPP", drain=False) == "objection"
    assert Worker(rt).drain() == 1
    assert phone_shows(rt)[-1].startswith("Du får ikke flere")  # the confirmation, and only it
    assert len(phone_shows(rt)) == 2
    with rt.db.read_only() as session:
        question = session.execute(
            select(Message.status, Message.skip_reason).where(Message.purpose == "survey_question")
        ).one()
        assert tuple(question) == ("skipped", "objection")
        assert is_suppressed(session, rt.keys.blind_indexes(PHONE))
    assert (conversation(rt).status, conversation(rt).answers) == ("objected", None)
    assert responses(rt) == []  # P8: unfinished answers are not kept
    assert say(rt, "5") == "unhandled"
    assert len(phone_shows(rt)) == 2


def test_p8_a_required_question_left_unreadable_ends_the_survey_and_stores_nothing(
    rt: Runtime,
) -> None:
    use_two_way_survey(
        rt, two_way_definition(questions=[{"key": "csat", "kind": "csat", "required": True}])
    )
    intake(rt, 1)
    Worker(rt).drain()
    assert [say(rt, "vet ikke") for _ in range(3)] == ["reask", "reask", "ended"]
    assert phone_shows(rt)[-1].startswith("Vi klarte ikke å lese svaret ditt")
    assert responses(rt) == []
    with rt.db.read_only() as session:
        assert session.execute(select(Invitation.status)).scalar_one() == "declined"
        assert (
            "invitation.conversation_ended"
            in session.execute(select(AuditEntry.action)).scalars().all()
        )
    assert (conversation(rt).status, conversation(rt).answers) == ("ended", None)


def test_p2_answering_by_sms_cancels_the_reminders(rt: Runtime, clock: FrozenClock) -> None:
    invited(rt)
    with rt.db.unit_of_work() as session:
        assert reminders.queue_reminders(session, now=clock.now()) == 1
    assert say(rt, "4") == "answer"
    with rt.db.read_only() as session:
        reminder = session.execute(
            select(Message.status, Message.skip_reason).where(Message.purpose == "reminder")
        ).one()
    assert tuple(reminder) == ("skipped", "conversation_started")


def test_p2_the_two_way_reminder_asks_the_first_question_again(
    rt: Runtime, clock: FrozenClock
) -> None:
    invited(rt)
    with rt.db.unit_of_work() as session:
        reminders.queue_reminders(session, now=clock.now())
    clock.advance(timedelta(hours=72))
    assert Worker(rt).drain() == 1
    csat = CSAT_NB.format(c=rt.settings.controller_name)
    assert phone_shows(rt)[-1] == (
        f"Hei Person! En påminnelse: {rt.settings.controller_name} vil gjerne vite hva du synes. "
        f"{csat} Svar STOPP for å reservere deg."
    )


def test_p8_an_idle_conversation_closes_and_drops_its_answers(
    rt: Runtime, clock: FrozenClock
) -> None:
    invited(rt)
    assert say(rt, "4") == "answer"
    clock.advance(timedelta(hours=rt.settings.sms_reply_window_hours, minutes=1))
    Worker(rt).sweep()
    assert (conversation(rt).status, conversation(rt).answers) == ("closed", None)
    assert say(rt, "Ja") == "unhandled"  # too late: nothing is stored and nothing sent
    assert responses(rt) == [] and len(phone_shows(rt)) == 2


def test_p7_concurrent_replies_take_turns_and_never_answer_one_question_twice(
    rt: Runtime,
) -> None:
    """Two replies from one person over two SMSC connections: the second waits for the first's
    lock on the conversation, then answers the question after it (here: unreadable as a yes or
    no, so asked again), instead of answering "what could we do better?" a second time."""
    if rt.db.dialect != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")
    invited(rt)
    assert say(rt, "2") == "answer"
    now = rt.clock.now() + timedelta(minutes=1)
    second: list[str] = []

    def reply(text: str) -> str:
        with rt.db.unit_of_work() as session:
            return receive_sms(
                session, rt.keys, phone_e164=PHONE, text=text, now=now,
                our_number=rt.settings.sms_sender, replies=rt.reply_context(),
            ).kind  # fmt: skip

    unit = rt.db.unit_of_work()
    session = unit.__enter__()
    first = receive_sms(
        session, rt.keys, phone_e164=PHONE, text="Raskere svar", now=now,
        our_number=rt.settings.sms_sender, replies=rt.reply_context(),
    )  # fmt: skip
    other = threading.Thread(target=lambda: second.append(reply("Mer tid til meg")))
    other.start()
    time.sleep(1)
    assert other.is_alive()  # waiting for the first reply's transaction
    unit.__exit__(None, None, None)
    other.join(30)
    assert (first.kind, second) == ("answer", ["reask"])
    state = conversation(rt)
    assert (state.question_key, state.reasks) == ("contact", 1)
    assert state.answers == {"csat": [2, None], "improve": [None, "Raskere svar"]}


def test_p8_a_survey_answered_on_the_web_meanwhile_closes_the_conversation(rt: Runtime) -> None:
    invited(rt)
    assert say(rt, "4") == "answer"
    with rt.db.unit_of_work() as session:
        code = session.execute(select(Invitation.code)).scalar_one()
        submit(session, code=code, form={"csat": "5"}, now=rt.clock.now(), notice_version="n")
    assert say(rt, "Ja") == "closed"  # nothing stored twice, nothing sent
    assert [{a.question_key for a in r.answers} for r in responses(rt)] == [{"csat"}]
    assert (conversation(rt).status, conversation(rt).answers) == ("closed", None)
    assert len(phone_shows(rt)) == 2


def test_p7_the_dev_inbound_api_does_not_tell_whether_a_conversation_took_the_reply(
    rt: Runtime, client: TestClient
) -> None:
    invited(rt)
    answered = client.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "4"})
    stranger = client.post("/api/v1/dev/inbound", json={"from": "+4741234599", "text": "4"})
    assert answered.json() == stranger.json() == {"outcome": "reply"}
    Worker(rt).drain()
    assert phone_shows(rt)[-1] == CONTACT_NB  # the conversation went on


def test_p7_nei_to_a_web_survey_s_invitation_is_still_an_objection(rt: Runtime) -> None:
    intake(rt, 1)  # the default survey: a link, no conversation
    Worker(rt).drain()
    assert say(rt, "Nei") == "objection"
    with rt.db.read_only() as session:
        assert is_suppressed(session, rt.keys.blind_indexes(PHONE))
        assert session.execute(select(SmsConversation)).first() is None
