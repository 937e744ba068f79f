"""The funnel: every interaction ends in exactly one outcome, computed from the rows, shown per
survey on the dashboard (with the count for each skip reason, sensitive ones behind the
minimum-group gate) and for one interaction in the API (P2, P7, P19)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from tests.factories import interaction_in
from tests.test_worker import Recording
from tilfreds.clock import FrozenClock
from tilfreds.invitations import funnel
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.intake import Timing, receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.opened import mark_opened_by_code
from tilfreds.invitations.service import close_invitation, expire_overdue, find_invitation
from tilfreds.invitations.states import InvitationStatus
from tilfreds.people.models import Interaction
from tilfreds.reporting.disclosure import MIN_GROUP
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

# interaction number -> the outcome the scenario below gives it
EXPECTED = {
    1: "scheduled",
    2: "sent",
    3: "delivered",
    4: "answered",
    5: "declined",
    6: "expired",
    7: "failed",
    8: "skipped",  # objected before its invitation went out
    9: "declined",  # objected after it went out
    10: "skipped",  # too old, at intake
    11: "opened",  # its page's beacon came, no answer yet
}


def _intake(rt: Runtime, n: int, **values: object) -> None:
    delay = timedelta(hours=1) if n == 1 else timedelta(0)
    with rt.db.unit_of_work() as session:
        receive_interaction(
            session,
            rt.keys,
            interaction_in(n, **values),
            timing=Timing(delay=delay, valid_for=timedelta(days=7)),
            now=rt.clock.now(),
            actor="test",
        )


def _code(session: Session, n: int) -> str:
    return session.execute(
        select(Invitation.code)
        .join(Interaction, Interaction.id == Invitation.interaction_id)
        .where(Interaction.external_id == f"ext-{n}")
    ).scalar_one()


def _message_of(session: Session, n: int) -> ScalarSelect[int]:
    return (
        select(Message.id)
        .join(Invitation, Invitation.id == Message.invitation_id)
        .where(Invitation.code == _code(session, n))
        .scalar_subquery()
    )


def scenario(rt: Runtime, clock: FrozenClock) -> None:
    rt.settings.send_windows = False
    for n in (*range(1, 10), 11):
        _intake(rt, n)
    _intake(rt, 10, occurred_at=clock.now() - timedelta(days=30))
    with rt.db.unit_of_work() as session:
        receive_sms(
            session, rt.keys, phone_e164=interaction_in(8).phone_e164, text="STOPP", now=clock.now()
        )
    rt.transport = Recording()
    Worker(rt).drain()
    now = clock.now()
    with rt.db.unit_of_work() as session:
        for n, status in ((3, "delivered"), (7, "failed")):
            session.execute(
                update(Message).where(Message.id == _message_of(session, n)).values(status=status)
            )
        responses.submit(
            session, code=_code(session, 4), form={"csat": "4"}, now=now, notice_version="n1"
        )
        declined = find_invitation(session, _code(session, 5), lock=True).invitation
        close_invitation(session, declined, status=InvitationStatus.DECLINED, now=now)
        session.execute(
            update(Invitation).where(Invitation.code == _code(session, 6)).values(expires_at=now)
        )
        expire_overdue(session, now=now)
        mark_opened_by_code(session, _code(session, 11), now)
        receive_sms(
            session, rt.keys, phone_e164=interaction_in(9).phone_e164, text="STOPP", now=now
        )


def test_p2_every_interaction_ends_in_one_outcome(rt: Runtime, clock: FrozenClock) -> None:
    scenario(rt, clock)
    with rt.db.read_only() as session:
        found = {n: funnel.outcome_of(session, f"ext-{n}") for n in EXPECTED}
        funnels = funnel.funnel(session)
    assert {n: o.outcome for n, o in found.items()} == EXPECTED
    assert found[8].reasons == ["objection"] and found[9].reasons == ["objection"]
    assert found[10].reasons == ["too_old"] and found[6].reasons == []
    totals = {outcome: sum(f.outcomes[outcome] for f in funnels) for outcome in funnel.OUTCOMES}
    assert totals == {o: list(EXPECTED.values()).count(o) for o in funnel.OUTCOMES}
    assert sum(f.total for f in funnels) == len(EXPECTED)
    assert sum(f.opened for f in funnels) == 2  # the answer (4) and the beacon (11)
    assert found[11].opened_at == clock.now() and found[1].opened_at is None
    # the skip reasons, per survey: too_old is about the rules, shown; one objection is hidden
    reasons = {r: n for f in funnels for r, n in f.reasons.items()}
    assert reasons == {"too_old": 1, "objection": None}


def test_p7_sensitive_reasons_are_shown_from_the_minimum_group_on(
    rt: Runtime, clock: FrozenClock
) -> None:
    rt.settings.send_windows = False
    for n in range(1, MIN_GROUP + 1):
        _intake(rt, n)
        with rt.db.unit_of_work() as session:
            receive_sms(
                session, rt.keys, phone_e164=interaction_in(n).phone_e164, text="STOPP",
                now=clock.now(),
            )  # fmt: skip
    with rt.db.read_only() as session:
        [survey] = funnel.funnel(session)
    assert survey.reasons == {"objection": MIN_GROUP}
    assert survey.outcomes["skipped"] == MIN_GROUP


def figure(client: TestClient, testid: str) -> str | None:
    page = client.get("/dashboard")
    assert page.status_code == 200
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', page.text, re.S)
    return html.unescape(found.group(1)).strip() if found else None


def test_the_dashboard_shows_the_funnel_per_survey_and_the_api_each_outcome(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    scenario(rt, clock)
    with rt.db.read_only() as session:
        sid = session.execute(select(Invitation.survey_id).limit(1)).scalar_one()
    assert figure(client, f"funnel-{sid}-answered") == "1"
    assert figure(client, f"funnel-{sid}-declined") == "2"
    assert figure(client, f"reason-{sid}-objection") == f"fewer than {MIN_GROUP}"
    body = client.get("/api/v1/interactions/ext-9").json()
    assert body["funnel"] == {"outcome": "declined", "reasons": ["objection"], "opened_at": None}
    assert figure(client, f"funnel-{sid}-opened") == "1"
    assert "Links opened by a person: 2" in (figure(client, f"funnel-{sid}-opened-all") or "")
    assert client.get("/api/v1/interactions/ext-1").json()["funnel"]["outcome"] == "scheduled"
