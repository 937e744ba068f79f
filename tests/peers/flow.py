"""The end-to-end SMS checks run the same way through each real peer (Jasmin, Kannel): the worker
sends a Norwegian two-segment invitation, its receipt marks it delivered, and replies injected at
the SMSC ("4", "STOPP") reach the invitations domain (P3, P7)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import uvicorn
from sqlalchemy import select

from tests.factories import interaction_in
from tests.peers.smsc import Smsc
from tilfreds.app import create_app
from tilfreds.invitations.intake import Timing, receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.texts import invitation_sms
from tilfreds.people.models import Interaction
from tilfreds.people.service import is_suppressed
from tilfreds.runtime import Runtime
from tilfreds.sms.encoding import cost

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


def check_invitation_arrived_whole(smsc: Smsc, phone: str) -> None:
    """The text at the SMSC is the Norwegian invitation, æøå intact, in two parts."""
    assert wait(lambda: any(m.destination == phone[1:] for m in smsc.received))
    got = next(m for m in smsc.received if m.destination == phone[1:])
    link = re.search(r"https?://\S+", got.text)
    assert link is not None, got.text
    expected = invitation_sms(locale="nb", name=NAME, controller=CONTROLLER, link=link.group())
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
