"""Identity confirmation before answers (P2) through the respondent's pages, and the wrong-number
report (P17): name, interaction and SMS code, the limits on wrong answers, and what the case
system sees. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.factories import interaction_payload, queue_reminder
from tests.factories import send_and_get_code as invite
from tests.test_cli import env_for
from tilfreds.audit.models import AuditEntry
from tilfreds.cli import app
from tilfreds.clock import FrozenClock
from tilfreds.crypto import context
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import MessagePurpose
from tilfreds.people.models import Person
from tilfreds.responses import identity
from tilfreds.responses import service as responses
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.surveys import service as surveys
from tilfreds.surveys.service import DEFAULT_FILE, DEFAULT_SLUG
from tilfreds.worker import Worker

ANSWERS = {"csat": "4", "contact": "no"}


def ask_identity(rt: Runtime, kind: str) -> None:
    """Publish a version of the default survey that confirms identity so."""
    with rt.db.unit_of_work() as session:
        current = surveys.by_slug(session, DEFAULT_SLUG).definition
        surveys.publish(session, current.model_copy(update={"identity": kind}), now=rt.clock.now())


def audit_actions(rt: Runtime) -> list[str]:
    with rt.db.read_only() as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def stored_responses(rt: Runtime) -> int:
    with rt.db.read_only() as session:
        return len(session.execute(select(Response.id)).all())


def invitation(rt: Runtime) -> Invitation:
    with rt.db.read_only() as session:
        found: Invitation = session.execute(select(Invitation)).scalar_one()
        session.expunge(found)
        return found


def test_p2_an_unconfirmed_respondent_cannot_submit(client: TestClient, rt: Runtime) -> None:
    ask_identity(rt, "name")
    code = invite(client, rt)
    posted = client.post(f"/s/{code}", data={**ANSWERS, "lang": "nb"})  # the form, skipping step
    assert posted.status_code == 303
    assert posted.headers["location"] == f"/s/{code}?lang=nb"  # back to the identity step
    assert stored_responses(rt) == 0
    assert invitation(rt).status == "sent"  # still open, nothing spent
    with rt.db.unit_of_work() as session, pytest.raises(responses.IdentityRequired):
        responses.submit(session, code=code, form=ANSWERS, now=rt.clock.now(), notice_version="1")


def test_p2_the_identity_step_is_shown_first_and_showing_it_records_nothing(
    client: TestClient, rt: Runtime
) -> None:
    ask_identity(rt, "name")
    code = invite(client, rt)
    before = audit_actions(rt)
    for _ in range(3):  # link scanners and previews
        page = client.get(f"/s/{code}")
        assert page.status_code == 200
        assert "Er du Kari N.?" in page.text  # first name and the surname's initial only (P9)
        assert "Nordmann" not in page.text
        assert 'name="csat"' not in page.text
    assert client.get(f"/s/{code}?lang=en").text.count("Are you Kari N.?") == 1
    assert audit_actions(rt) == before
    assert invitation(rt).identity_confirmed_at is None


def test_p2_yes_to_the_name_confirms_and_the_answers_are_then_taken(
    client: TestClient, rt: Runtime
) -> None:
    ask_identity(rt, "name")
    code = invite(client, rt)
    confirmed = client.post(f"/s/{code}/identity", data={"answer": "yes", "lang": "nb"})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == f"/s/{code}?lang=nb"
    assert 'name="csat"' in client.get(f"/s/{code}").text
    assert client.post(f"/s/{code}", data=ANSWERS).status_code == 303
    assert stored_responses(rt) == 1
    assert invitation(rt).identity_confirmed_at == rt.clock.now()
    assert invitation(rt).opened_at == rt.clock.now()  # the funnel: a POST from the page
    assert "identity.confirmed" in audit_actions(rt)


def test_p17_no_to_the_name_ends_the_survey_stops_reminders_and_reports_a_wrong_number(
    client: TestClient, rt: Runtime
) -> None:
    ask_identity(rt, "name")
    code = invite(client, rt)
    with rt.db.unit_of_work() as session:
        queue_reminder(session, send_after=rt.clock.now() + timedelta(days=3), now=rt.clock.now())
    said_no = client.post(f"/s/{code}/identity", data={"answer": "no", "lang": "nb"})
    assert said_no.status_code == 303
    page = client.get(f"/s/{code}")
    assert "Vi sender ikke flere undersøkelser til dette nummeret." in page.text
    with rt.db.read_only() as session:
        reminder = session.execute(
            select(Message).where(Message.purpose == MessagePurpose.REMINDER)
        ).scalar_one()
        assert (reminder.status, reminder.skip_reason) == ("skipped", "invitation_declined")
    assert invitation(rt).status == "declined"
    assert "invitation.wrong_number" in audit_actions(rt)
    # the case system sees it on the interaction and in the feed
    state = client.get("/api/v1/interactions/case-1001-call-1").json()
    assert state["wrong_number_at"] is not None and state["identity_confirmed_at"] is None
    feed = client.get("/api/v1/wrong-numbers").json()
    assert [item["external_id"] for item in feed["items"]] == ["case-1001-call-1"]
    assert feed["next"] is None
    # the number is not surveyed again; a corrected number is
    again = client.post("/api/v1/interactions", json=interaction_payload(external_id="case-2"))
    assert again.json()["skip_reasons"][0] == "wrong_number"  # fatigue holds too
    corrected = client.post(
        "/api/v1/interactions",
        json=interaction_payload(
            external_id="case-3",
            customer={"name": "Kari Nordmann", "phone": "412 34 999", "locale": "nb-NO"},
        ),
    )
    assert corrected.json()["outcome"] == "scheduled"


def test_p17_a_survey_message_queued_before_the_report_is_not_sent_to_the_wrong_number(
    client: TestClient, rt: Runtime
) -> None:
    """Reported wrong through another invitation while this one's SMS waited in the queue."""
    assert client.post("/api/v1/interactions", json=interaction_payload()).status_code == 201
    with rt.db.unit_of_work() as session:
        session.execute(update(Person).values(wrong_number_at=rt.clock.now()))
    Worker(rt).drain()
    state = client.get("/api/v1/interactions/case-1001-call-1").json()
    assert [m["skip_reason"] for m in state["messages"]] == ["wrong_number"]


def test_p2_without_a_stored_name_the_interaction_is_asked_instead(
    client: TestClient, rt: Runtime
) -> None:
    ask_identity(rt, "name")
    code = invite(client, rt)
    with rt.db.unit_of_work() as session:
        person = session.execute(select(Person)).scalar_one()
        where = context("people", "name", person.phone_index)
        person.name_cipher = rt.keys.encrypt("", context=where)
    assert "How were you in touch with us?" in client.get(f"/s/{code}?lang=en").text
    assert client.post(f"/s/{code}/identity", data={"answer": "no"}).status_code == 422
    assert client.post(f"/s/{code}/identity", data={"answer": "phone"}).status_code == 303


def test_p2_a_wrong_interaction_answer_is_counted_and_locks_after_three(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    ask_identity(rt, "interaction")
    code = invite(client, rt)  # the interaction took place by phone
    page = client.get(f"/s/{code}?lang=en").text
    assert "How were you in touch with us?" in page
    offered = re.findall(r'name="answer" value="(\w+)"', page)
    assert offered == list(identity.CHANNELS)  # fixed order, whatever the right one is
    for wrong in ("chat", "letter"):
        said = client.post(f"/s/{code}/identity", data={"answer": wrong, "lang": "en"})
        assert said.status_code == 422
        assert "That was not right. Please try again." in said.text
    locked = client.post(f"/s/{code}/identity", data={"answer": "web", "lang": "en"})
    assert locked.status_code == 429
    assert "please try again in 30 minutes" in locked.text
    still = client.post(f"/s/{code}/identity", data={"answer": "phone", "lang": "en"})
    assert still.status_code == 429  # even the right answer waits out the lock
    assert 'name="answer"' not in client.get(f"/s/{code}").text
    clock.advance(identity.LOCKED_FOR)
    assert client.post(f"/s/{code}/identity", data={"answer": "phone"}).status_code == 303
    assert invitation(rt).identity_confirmed_at is not None
    actions = audit_actions(rt)
    assert actions.count("identity.failed") == 2 and actions.count("identity.locked") == 1
    with rt.db.read_only() as session:
        fields = session.execute(
            select(AuditEntry.fields).where(AuditEntry.action.like("identity.%"))
        ).scalars()
        assert all(
            set(f) <= {"identity_failures", "identity_locked_until", "identity_confirmed_at"}
            for f in fields
        )


def code_sent(client: TestClient, rt: Runtime) -> tuple[str, str]:
    """A survey that asks for an SMS code, invited, and the code asked for: (link, code)."""
    ask_identity(rt, "sms_code")
    link = invite(client, rt)
    assert client.post(f"/s/{link}/identity/code", data={"lang": "en"}).status_code == 303
    return link, _code_from_sms(rt)


def _code_from_sms(rt: Runtime) -> str:
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        body = dev.inbox(session, rt.keys)[0].body
    match = re.search(r": (\d{6})\.", body)
    assert match, body
    return match.group(1)


def test_p2_a_code_by_sms_confirms_and_is_stored_only_as_a_keyed_hash(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    ask_identity(rt, "sms_code")
    code = invite(client, rt)
    page = client.get(f"/s/{code}")
    assert "Send meg en kode" in page.text
    with rt.db.read_only() as session:  # the GET sent nothing
        assert (
            session.execute(
                select(Message).where(Message.purpose == MessagePurpose.IDENTITY_CODE)
            ).first()
            is None
        )
    sent = client.post(f"/s/{code}/identity/code", data={"lang": "nb"})
    assert sent.status_code == 303
    secret = _code_from_sms(rt)
    stored = invitation(rt)
    assert stored.identity_code_hash and secret not in stored.identity_code_hash
    assert stored.identity_code_expires_at == clock.now() + identity.CODE_VALID_FOR
    assert 'autocomplete="one-time-code"' in client.get(f"/s/{code}").text
    too_soon = client.post(f"/s/{code}/identity/code", data={"lang": "nb"})
    assert too_soon.status_code == 429  # one code a minute
    wrong = "000000" if secret != "000000" else "111111"
    assert client.post(f"/s/{code}/identity", data={"answer": wrong}).status_code == 422
    spaced = f"{secret[:3]} {secret[3:]}"  # as people type it
    assert client.post(f"/s/{code}/identity", data={"answer": spaced}).status_code == 303
    assert client.post(f"/s/{code}", data=ANSWERS).status_code == 303
    assert stored_responses(rt) == 1


def test_p2_a_code_expires_after_ten_minutes_and_a_new_one_can_be_asked_for(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    code, secret = code_sent(client, rt)
    clock.advance(identity.CODE_VALID_FOR)
    late = client.post(f"/s/{code}/identity", data={"answer": secret, "lang": "en"})
    assert late.status_code == 409
    assert "The code has expired" in late.text
    assert client.post(f"/s/{code}/identity/code", data={"lang": "en"}).status_code == 303
    fresh = _code_from_sms(rt)
    assert client.post(f"/s/{code}/identity", data={"answer": fresh}).status_code == 303


def test_p2_three_wrong_codes_void_the_code(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    code, secret = code_sent(client, rt)
    wrong = "000000" if secret != "000000" else "111111"
    statuses = [
        client.post(f"/s/{code}/identity", data={"answer": wrong}).status_code for _ in range(3)
    ]
    assert statuses == [422, 422, 429]
    clock.advance(identity.LOCKED_FOR)
    assert client.post(f"/s/{code}/identity", data={"answer": secret}).status_code == 409
    assert invitation(rt).identity_confirmed_at is None


@pytest.mark.parametrize(
    "body",
    ["", "answer=", "answer=maybe", "answer=%FF%FE%00", "answer=" + "x" * 10_000, "answer=1%0A2"],
)
@pytest.mark.parametrize("kind", ["name", "interaction", "sms_code"])
def test_bad_identity_input_is_a_4xx_never_a_500_and_not_counted(
    client: TestClient, rt: Runtime, kind: str, body: str
) -> None:
    ask_identity(rt, kind)
    code = invite(client, rt)
    if kind == "sms_code":
        client.post(f"/s/{code}/identity/code", data={"lang": "en"})
    said = client.post(
        f"/s/{code}/identity",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert said.status_code == 422
    assert "maybe" not in said.text and "xxxxxxxxxx" not in said.text  # never echoed
    assert invitation(rt).identity_failures == 0
    assert client.post("/s/NOSUCHCODE/identity", data={"answer": "yes"}).status_code == 404
    assert client.post("/s/not-a-code!/identity/code", data={}).status_code == 404


def test_the_wrong_number_feed_pages_in_the_order_reported(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    ask_identity(rt, "name")
    for n in range(3):
        code = invite(
            client,
            rt,
            external_id=f"case-{n}",
            customer={"name": "Kari Nordmann", "phone": f"412 34 50{n}", "locale": "nb-NO"},
        )
        client.post(f"/s/{code}/identity", data={"answer": "no"})
        clock.advance(timedelta(minutes=1))
    first = client.get("/api/v1/wrong-numbers", params={"limit": 2}).json()
    assert [i["external_id"] for i in first["items"]] == ["case-0", "case-1"]
    rest = client.get("/api/v1/wrong-numbers", params={"limit": 2, **first["next"]}).json()
    assert [i["external_id"] for i in rest["items"]] == ["case-2"] and rest["next"] is None
    naive = client.get("/api/v1/wrong-numbers", params={"since": "2026-11-25T09:00:00"})
    assert naive.status_code == 422 and naive.json()["error"]["field"]
    assert client.get("/api/v1/wrong-numbers", params={"limit": 0}).status_code == 422


def test_p2_the_identity_kind_is_loaded_from_yaml_and_shown(
    client: TestClient, rt: Runtime, tmp_path: Path
) -> None:
    source = tmp_path / "named.yaml"
    source.write_text(DEFAULT_FILE.read_text("utf-8").replace("identity: none", "identity: name"))
    runner = CliRunner()
    loaded = runner.invoke(app, ["survey", "load", str(source)], env=env_for(rt))
    assert loaded.exit_code == 0, loaded.output
    shown = runner.invoke(app, ["survey", "show", DEFAULT_SLUG], env=env_for(rt))
    assert "identity: name" in shown.output
    listed = client.get("/api/v1/surveys").json()
    assert [(s["slug"], s["identity"]) for s in listed] == [(DEFAULT_SLUG, "name")]


def test_p9_the_name_is_asked_as_first_name_and_the_surnames_initial() -> None:
    assert identity.short_name("Kari Nordmann") == "Kari N."
    assert identity.short_name("Kari Anne  Nordmann") == "Kari N."
    assert identity.short_name("Kari") == "Kari"
    assert identity.short_name("") == ""
