"""The reshaped schema at work: a message with a purpose and no invitation goes through the same
queue (convention 14), and an answer outlives the link to its person (P15, P18 keep statistics,
not people)."""

from __future__ import annotations

from sqlalchemy import delete, select

from tests.factories import PHONE
from tests.test_worker import Recording, intake
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.messages import queue_message
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import MessagePurpose
from tilfreds.invitations.texts import objection_confirmation_sms
from tilfreds.people.models import Interaction, Person
from tilfreds.responses import service as responses
from tilfreds.responses.models import Answer, Response
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker


def test_p7_an_objection_confirmation_reaches_a_number_we_hold_no_person_for(
    rt: Runtime,
) -> None:
    with rt.db.unit_of_work() as session:
        receive_sms(session, rt.keys, phone_e164=PHONE, text="STOPP", now=rt.clock.now())
    transport = Recording()
    rt.transport = transport
    assert Worker(rt).drain() == 1  # the STOPP queued it; in the number's country's language
    [sms] = transport.sent
    controller = rt.settings.controller_name
    assert (sms.to, sms.body) == (
        PHONE,
        objection_confirmation_sms(locale="nb", controller=controller),
    )
    with rt.db.read_only() as session:
        message = session.execute(select(Message)).scalar_one()
        assert (message.status, message.invitation_id, message.person_id) == (
            "submitted",
            None,
            None,
        )
        assert PHONE.encode() not in (message.to_cipher or b"")


def test_a_sealed_number_copied_to_another_message_does_not_open(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        first, second = (
            queue_message(
                session,
                rt.keys,
                purpose=MessagePurpose.RIGHTS_NOTICE,
                to=to,
                body="notice",
                now=rt.clock.now(),
            )
            for to in (PHONE, "+4798765432")
        )
        stolen = session.get(Message, first)
        target = session.get(Message, second)
        assert stolen is not None and target is not None
        target.to_cipher = stolen.to_cipher
    rt.transport = Recording()
    Worker(rt).drain()
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [m.status for m in rows] == ["submitted", "failed"]


def test_an_answer_outlives_its_person_without_identifying_them(rt: Runtime) -> None:
    intake(rt, 1)
    Worker(rt).drain()
    with rt.db.unit_of_work() as session:
        code = session.execute(select(Invitation.code)).scalar_one()
        responses.submit(session, code=code, form={"csat": "2"}, now=rt.clock.now())
    with rt.db.unit_of_work() as session:  # what erasure will do: the person goes
        session.execute(delete(Person))
    with rt.db.read_only() as session:
        assert session.execute(select(Interaction)).first() is None
        assert session.execute(select(Invitation)).first() is None
        response = session.execute(select(Response)).scalar_one()
        answer = session.execute(select(Answer)).scalar_one()
    assert (response.invitation_id, response.interaction_id) == (None, None)
    assert (response.channel, response.reason, response.locale) == ("phone", "payment plan", "nb")
    assert (answer.question_key, answer.value_int) == ("csat", 2)
