"""The audit head is the last lock a transaction takes: an answer racing an objection for the same
person never deadlocks, and the objection is always kept (P7). PostgreSQL only: SQLite serialises
writers with BEGIN IMMEDIATE, so it has no row locks to order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import interaction_in
from tilfreds.audit import service as audit
from tilfreds.invitations import inbound
from tilfreds.invitations.intake import receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Suppression
from tilfreds.responses import service as responses
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime

PAIRS = 40


def test_p7_objection_racing_an_answer_never_deadlocks_and_is_kept(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers: there are no row locks to order")
    now = rt.clock.now()
    people: list[tuple[str, str]] = []  # (phone, survey code)
    with rt.db.unit_of_work() as session:
        for n in range(PAIRS):
            data = interaction_in(n)
            received = receive_interaction(
                session, rt.keys, data, timing=rt.timing(), now=now, actor="system"
            )
            assert received.invitation is not None
            people.append((data.phone_e164, received.invitation.code))

    def answer(code: str, start: threading.Barrier) -> None:
        start.wait(timeout=30)
        try:
            with rt.db.unit_of_work() as session:
                form = {"csat": "4", "contact": "no"}
                responses.submit(session, code=code, form=form, now=now + timedelta(minutes=1))
        except responses.InvitationClosed:
            pass  # the objection committed first: the page says the link has closed

    def object_by_sms(phone: str, start: threading.Barrier) -> None:
        start.wait(timeout=30)
        with rt.db.unit_of_work() as session:
            inbound.receive_sms(
                session, rt.keys, phone_e164=phone, text="STOPP", now=now + timedelta(minutes=1)
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for phone, code in people:  # both halves of a pair start together
            start = threading.Barrier(2)
            futures.append(pool.submit(answer, code, start))
            futures.append(pool.submit(object_by_sms, phone, start))
        errors = [repr(exc) for f in futures if (exc := f.exception(timeout=120)) is not None]
    assert errors == []

    with rt.db.read_only() as session:
        objections = session.execute(select(func.count()).select_from(Suppression)).scalar_one()
        still_open = session.execute(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.status.in_(("pending", "sent")))
        ).scalar_one()
        queued = session.execute(
            select(func.count())
            .select_from(Message)
            .where(Message.status == "queued", Message.purpose != "objection_confirmation")
        ).scalar_one()
        answered = session.execute(
            select(func.count()).select_from(Invitation).where(Invitation.status == "answered")
        ).scalar_one()
        responses_kept = session.execute(select(func.count()).select_from(Response)).scalar_one()
        result = audit.verify(session)
    assert (objections, still_open, queued) == (PAIRS, 0, 0)
    assert answered == responses_kept  # an objection never rewrites an answered invitation
    assert result.ok, result.problem
