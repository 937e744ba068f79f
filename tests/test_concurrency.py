"""Races on PostgreSQL with real concurrent transactions, and no blocking work on the event loop:
a second submission of one link waits for the first and is refused (P4: one answer per
interaction); two wrong identity answers at once cannot both pass the limit (P2); every route
that can touch the database is a plain function."""

from __future__ import annotations

import inspect
import threading

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import Route

from tests.test_identity import ask_identity
from tests.test_worker import intake
from tilfreds.app import create_app
from tilfreds.audit.models import AuditEntry
from tilfreds.invitations.models import Invitation
from tilfreds.responses import identity
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime

FORM = {"csat": "4", "contact": "no"}


def test_a_second_submission_of_one_link_waits_for_the_first_and_is_refused(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE; the race needs row locks")
    intake(rt, 1)
    with rt.db.read_only() as session:
        code = session.query(Invitation.code).scalar()
    outcome: dict[str, str] = {}

    def second() -> None:
        try:
            with rt.db.unit_of_work() as session:
                responses.submit(
                    session, code=code, form=FORM, now=rt.clock.now(), notice_version="n1"
                )
            outcome["second"] = "stored"
        except Exception as exc:
            outcome["second"] = type(exc).__name__

    with rt.db.unit_of_work() as session:
        responses.submit(session, code=code, form=FORM, now=rt.clock.now(), notice_version="n1")
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive()  # it waits for the first submission's row lock
    racer.join(timeout=10)
    assert outcome == {"second": "AlreadyAnswered"}  # not a unique-key error (a 500)


def test_p2_two_concurrent_wrong_identity_answers_cannot_both_pass_the_limit(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE; the race needs row locks")
    ask_identity(rt, "interaction")
    intake(rt, 1)  # by phone
    with rt.db.unit_of_work() as session:
        invitation = session.execute(select(Invitation)).scalar_one()
        invitation.identity_failures = identity.MAX_FAILURES - 1  # one wrong answer left
        code = invitation.code
    outcome: dict[str, str] = {}

    def second() -> None:
        try:
            with rt.db.unit_of_work() as session:
                said = identity.answer(
                    session, rt.keys, code=code, answer="chat", now=rt.clock.now()
                )
            outcome["second"] = said
        except Exception as exc:
            outcome["second"] = type(exc).__name__

    with rt.db.unit_of_work() as session:
        first = identity.answer(session, rt.keys, code=code, answer="letter", now=rt.clock.now())
        assert first == identity.Outcome.LOCKED
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive()  # it waits for the first answer's row lock
    racer.join(timeout=10)
    assert outcome == {"second": "IdentityLocked"}  # not a fourth guess
    with rt.db.read_only() as session:
        actions = list(session.execute(select(AuditEntry.action)).scalars())
    assert actions.count("identity.locked") == 1 and "identity.failed" not in actions


def test_no_route_runs_on_the_event_loop(rt: Runtime) -> None:
    app = create_app(rt)
    async_routes = [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute | Route)
        # a form POST's endpoint only reads the body, then runs the function it wraps in a thread
        and inspect.iscoroutinefunction(inspect.unwrap(route.endpoint))
    ]
    assert async_routes == ["/openapi.json"]  # FastAPI's own, which touches no database
