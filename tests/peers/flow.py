"""The end-to-end SMS checks run the same way through each real peer (Jasmin, Kannel): the worker
sends a Norwegian two-segment invitation, its receipt marks it delivered, and replies injected at
the SMSC ("4", "STOPP") reach the invitations domain (P3, P7); a two-way survey is answered by
replies at the SMSC, question by question (P4, P7, P8)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import uvicorn
import yaml
from sqlalchemy import select

from tests.factories import interaction_in
from tests.peers.smsc import Smsc
from tilfreds.app import create_app
from tilfreds.invitations.intake import Timing, receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.texts import survey_sms
from tilfreds.people.models import Interaction
from tilfreds.people.service import is_suppressed
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime
from tilfreds.sms.encoding import cost
from tilfreds.surveys.definition import SurveyDefinition, parse_definition
from tilfreds.surveys.service import DEFAULT_FILE, publish
from tilfreds.worker import Worker

CONTROLLER = "Ærlig Øl & Bær AS"
NAME = "Åse Nordmann"


@contextmanager
def serving(rt: Runtime, port: int) -> Iterator[str]:
    """tilfreds' web app (with its SMS callback route) on ``port``, for a peer to call."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait(lambda: server.started, 20), "the web app did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait(check: Callable[[], object], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def invite(rt: Runtime, n: int, *, delay: timedelta = timedelta(0)) -> str:
    """An interaction of person ``n`` (named ``NAME``); its invitation is due after ``delay``.
    Returns the person's number."""
    rt.settings.controller_name = CONTROLLER
    data = interaction_in(n, name=NAME)
    with rt.db.unit_of_work() as session:
        receive_interaction(
            session,
            rt.keys,
            data,
            timing=Timing(delay=delay, valid_for=timedelta(days=7), max_age=timedelta(days=14)),
            now=rt.clock.now(),
            actor="test",
        )
    return data.phone_e164


def status_of(rt: Runtime, phone: str) -> tuple[str, str]:
    """(invitation status, its message's status) for the one invitation to ``phone``'s person."""
    with rt.db.read_only() as session:
        row = session.execute(
            select(Invitation.status, Message.status)
            .join(Message, Message.invitation_id == Invitation.id)
            .join(Interaction, Interaction.id == Invitation.interaction_id)
            .where(Interaction.external_id == f"ext-{int(phone[-8:]) - 40000000}")
        ).one()
    return str(row[0]), str(row[1])


LONG_INVITATION = (
    "Hei {name}! {controller} vil gjerne vite hvor fornøyd du var med kontakten med oss i dag. "
    "Svar her: {link} Svar STOPP for å reservere deg."
)


def long_invitation(rt: Runtime) -> SurveyDefinition:
    """A version of the default survey whose Norwegian invitation takes two segments."""
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data["sms"]["invitation"]["nb"] = LONG_INVITATION
    with rt.db.unit_of_work() as session:
        return publish(session, parse_definition(data), now=rt.clock.now()).definition


def check_invitation_arrived_whole(smsc: Smsc, phone: str, survey: SurveyDefinition) -> None:
    """The text at the SMSC is the survey's Norwegian invitation, æøå intact, in two parts."""
    assert wait(lambda: any(m.destination == phone[1:] for m in smsc.received))
    got = next(m for m in smsc.received if m.destination == phone[1:])
    link = re.search(r"https?://\S+", got.text)
    assert link is not None, got.text
    expected = survey_sms(
        survey, "invitation", locale="nb", name=NAME, controller=CONTROLLER, link=link.group()
    )
    assert got.text == expected
    assert (got.segments, got.data_coding) == (cost(expected).segments, 0) == (2, 0)


def check_replies(rt: Runtime, smsc: Smsc, *, answered: str, objecting: str) -> None:
    """ "4" from one number is taken in and objects to nothing; "STOPP" from the other, sent after
    it, puts that number on the suppression list and cancels its invitation's message that was
    still waiting. (Two-way answers are not recorded yet: "4" is handled as not an objection.)"""
    assert status_of(rt, objecting) == ("pending", "queued")
    smsc.inject_mo(answered[1:], "2270", "4")
    smsc.inject_mo(objecting[1:], "2270", "STOPP")
    assert wait(lambda: status_of(rt, objecting)[0] == "objected"), status_of(rt, objecting)
    assert status_of(rt, objecting)[1] == "skipped"
    with rt.db.read_only() as session:
        assert is_suppressed(session, rt.keys.blind_indexes(objecting))
        assert not is_suppressed(session, rt.keys.blind_indexes(answered))
    assert status_of(rt, answered)[0] != "objected"


def texts_to(smsc: Smsc, phone: str) -> list[str]:
    return [m.text for m in smsc.received if m.destination == phone[1:]]


def sms_reply(smsc: Smsc, worker: Worker, phone: str, text: str) -> str:
    """The customer replies ``text`` at the SMSC; returns the next SMS tilfreds sends them."""
    before = len(texts_to(smsc, phone))
    smsc.inject_mo(phone[1:], "2270", text)
    assert wait(lambda: worker.drain() >= 0 and len(texts_to(smsc, phone)) > before), texts_to(
        smsc, phone
    )
    return texts_to(smsc, phone)[-1]


def answers_of(rt: Runtime, phone: str) -> dict[str, tuple[int | None, str | None]]:
    external_id = f"ext-{int(phone[-8:]) - 40000000}"
    with rt.db.read_only() as session:
        response = session.execute(
            select(Response)
            .join(Interaction, Interaction.id == Response.interaction_id)
            .where(Interaction.external_id == external_id)
        ).scalar_one_or_none()
    if response is None:
        return {}
    return {a.question_key: (a.value_int, a.value_text) for a in response.answers}


def check_two_way(
    rt: Runtime, smsc: Smsc, worker: Worker, *, answering: str, objecting: str
) -> None:
    """Both were sent a two-way invitation that asks the first question. One answers a garbled
    reply (asked again), "4" (recorded as the score) and "ja"; the other answers "2", then
    STOPP midway: objected, nothing stored, and nothing more sent but the confirmation."""
    for phone in (answering, objecting):
        assert wait(lambda phone=phone: len(texts_to(smsc, phone)) == 1), texts_to(smsc, phone)
        [invitation] = texts_to(smsc, phone)
        assert invitation.startswith("Hei Åse! Hvor fornøyd er du med hvordan " + CONTROLLER)
        assert "Svar 1-5" in invitation and invitation.endswith("Svar STOPP for å reservere deg.")
    assert sms_reply(smsc, worker, answering, "hæ?").startswith("Beklager, det svaret forsto")
    assert sms_reply(smsc, worker, answering, "4") == (
        "Kan vi kontakte deg om tilbakemeldingen din? Svar JA eller NEI."
    )
    assert sms_reply(smsc, worker, answering, "ja") == "Takk for svaret!"
    assert answers_of(rt, answering) == {"csat": (4, None), "contact": (1, None)}
    assert sms_reply(smsc, worker, objecting, "2") == "Hva kunne vi gjort bedre?"
    assert sms_reply(smsc, worker, objecting, "STOPP").startswith("Du får ikke flere")
    with rt.db.read_only() as session:
        assert is_suppressed(session, rt.keys.blind_indexes(objecting))
    assert status_of_invitation(rt, objecting) == "objected"
    assert answers_of(rt, objecting) == {}
    worker.drain()
    assert len(texts_to(smsc, objecting)) == 3  # invitation, question, confirmation: no more


def status_of_invitation(rt: Runtime, phone: str) -> str:
    with rt.db.read_only() as session:
        status = session.execute(
            select(Invitation.status)
            .join(Interaction, Interaction.id == Invitation.interaction_id)
            .where(Interaction.external_id == f"ext-{int(phone[-8:]) - 40000000}")
        ).scalar_one()
    return str(status)
