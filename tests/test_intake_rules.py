"""Intake's rules: an interaction from the future is refused; one too old to ask about, or from a
person who objected, is recorded as skipped with its reasons, storing nothing about the person
(P7, P9, P10)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import PHONE, interaction_payload
from tilfreds.clock import FrozenClock
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Interaction, Person
from tilfreds.runtime import Runtime


def count(rt: Runtime, model: type) -> int:
    with rt.db.read_only() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def at(clock: FrozenClock, delta: timedelta) -> str:
    return (clock.now() + delta).isoformat()


def test_an_interaction_in_the_future_is_refused_beyond_clock_skew(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    ahead = client.post(
        "/api/v1/interactions", json=interaction_payload(occurred_at=at(clock, timedelta(hours=1)))
    )
    assert ahead.status_code == 422
    assert ahead.json()["error"]["field"] == "occurred_at"
    assert count(rt, Interaction) == 0
    skewed = client.post(
        "/api/v1/interactions",
        json=interaction_payload(occurred_at=at(clock, timedelta(minutes=2))),
    )
    assert skewed.status_code == 201


def test_an_interaction_too_old_to_ask_about_is_skipped_with_its_reason(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    old = at(clock, -timedelta(days=rt.settings.interaction_max_age_days, seconds=1))
    r = client.post("/api/v1/interactions", json=interaction_payload(occurred_at=old))
    assert r.status_code == 201
    body = r.json()
    assert (body["outcome"], body["skip_reasons"], body["invitation"]) == (
        "skipped",
        ["too_old"],
        None,
    )
    assert (count(rt, Person), count(rt, Invitation), count(rt, Message)) == (0, 0, 0)
    again = client.post("/api/v1/interactions", json=interaction_payload(occurred_at=old))
    assert again.status_code == 200 and again.json()["skip_reasons"] == ["too_old"]


def _object(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        receive_sms(session, rt.keys, phone_e164=PHONE, text="STOPP", now=rt.clock.now())


def test_p7_an_objector_is_skipped_at_intake_and_nothing_about_them_is_stored(
    client: TestClient, rt: Runtime
) -> None:
    _object(rt)
    r = client.post("/api/v1/interactions", json=interaction_payload())
    assert r.status_code == 201
    assert (r.json()["outcome"], r.json()["skip_reasons"]) == ("skipped", ["objection"])
    assert (count(rt, Person), count(rt, Invitation)) == (0, 0)
    with rt.db.read_only() as session:  # only the objection's confirmation, to the number
        purposes = session.execute(select(Message.purpose, Message.person_id)).all()
        assert purposes == [("objection_confirmation", None)]
        interaction = session.execute(select(Interaction)).scalar_one()
    assert interaction.person_id is None
    assert (interaction.reason, interaction.case_ref) == ("", "")
    assert interaction.skip_reasons == "objection"


def test_every_reason_is_recorded_with_the_objection_first(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    _object(rt)
    old = at(clock, -timedelta(days=rt.settings.interaction_max_age_days + 1))
    r = client.post("/api/v1/interactions", json=interaction_payload(occurred_at=old))
    assert r.json()["skip_reasons"] == ["objection", "too_old"]


def test_p7_an_objection_after_registration_still_skips_new_interactions(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/interactions", json=interaction_payload(external_id="before"))
    _object(rt)
    r = client.post("/api/v1/interactions", json=interaction_payload(external_id="after"))
    assert r.json()["skip_reasons"] == ["objection", "fatigue"]  # the objection first
    assert (count(rt, Invitation), count(rt, Message)) == (1, 2)  # its message, the confirmation


def test_an_interaction_shows_its_outcome_and_each_message_status(
    client: TestClient, rt: Runtime
) -> None:
    from tilfreds.worker import Worker

    client.post("/api/v1/interactions", json=interaction_payload())
    queued = client.get("/api/v1/interactions/case-1001-call-1").json()
    assert (queued["outcome"], queued["invitation_status"]) == ("scheduled", "pending")
    assert [m["status"] for m in queued["messages"]] == ["queued"]
    Worker(rt).drain()
    sent = client.get("/api/v1/interactions/case-1001-call-1").json()
    assert sent["invitation_status"] == "sent"
    [message] = sent["messages"]
    assert (message["purpose"], message["status"], message["attempts"]) == (
        "invitation",
        "delivered",  # the dev phone's receipt
        1,
    )
    assert message["provider_ids"] == [message["provider_id"]] and message["segments"] == 1
    assert client.get("/api/v1/interactions/nope").status_code == 404
