"""One survey end to end through the API and the respondent's pages (P1, P4)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import queue_reminder, send_and_get_code
from tilfreds.clock import FrozenClock
from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.i18n import translator
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import MessagePurpose
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime


def test_p4_interaction_to_answer_to_summary(client: TestClient, rt: Runtime) -> None:
    code = send_and_get_code(client, rt)
    page = client.get(f"/s/{code}")
    assert page.status_code == 200
    assert "Hvor fornøyd er du" in page.text  # the respondent's own language (nb)
    posted = client.post(f"/s/{code}", data={"csat": "4", "contact": "yes"})
    assert posted.status_code == 303
    assert posted.headers["location"] == f"/s/{code}/thanks?lang=nb"
    assert "Takk!" in client.get(f"/s/{code}/thanks").text
    summary = client.get("/api/v1/reports/summary").json()
    assert summary["responses"] == 1 and summary["sent"] == 1
    assert summary["contact_consents"] is None  # one person: a figure from answers stays hidden
    with rt.db.read_only() as session:
        response = session.execute(select(Response)).scalar_one()
        invitation = session.execute(select(Invitation)).scalar_one()
        assert response.interaction_id == invitation.interaction_id  # P4: tied to what it rates
        assert response.submitted_at == rt.clock.now()  # P9: date and time of the answer
        assert {(a.question_key, a.value_int) for a in response.answers} == {
            ("csat", 4),
            ("contact", 1),
        }


def test_get_never_spends_the_link(client: TestClient, rt: Runtime) -> None:
    code = send_and_get_code(client, rt)
    for _ in range(3):  # link scanners and previews
        assert client.get(f"/s/{code}").status_code == 200
    assert client.post(f"/s/{code}", data={"csat": "5", "contact": "no"}).status_code == 303


def test_second_submission_is_refused_and_first_kept(client: TestClient, rt: Runtime) -> None:
    code = send_and_get_code(client, rt)
    client.post(f"/s/{code}", data={"csat": "2", "contact": "no"})
    again = client.post(f"/s/{code}", data={"csat": "5", "contact": "yes"})
    assert again.status_code == 303
    assert "allerede besvart" in client.get(f"/s/{code}").text
    with rt.db.read_only() as session:
        response = session.execute(select(Response)).scalar_one()
        assert not response.contact_consent


def test_incomplete_form_is_shown_again_with_an_error_and_nothing_stored(
    client: TestClient, rt: Runtime
) -> None:
    code = send_and_get_code(client, rt)
    page = client.post(f"/s/{code}", data={"csat": "9"})
    assert page.status_code == 422
    assert "Se over det markerte spørsmålet." in page.text
    with rt.db.read_only() as session:
        assert session.execute(select(Response)).first() is None


def test_an_answer_cancels_what_is_still_queued_for_the_invitation(
    client: TestClient, rt: Runtime
) -> None:
    code = send_and_get_code(client, rt)
    with rt.db.unit_of_work() as session:
        queue_reminder(session, send_after=rt.clock.now() + timedelta(days=2), now=rt.clock.now())
    client.post(f"/s/{code}", data={"csat": "3", "contact": "no"})
    with rt.db.read_only() as session:
        query = select(Message).where(Message.purpose == MessagePurpose.REMINDER)
        reminder = session.execute(query).scalar_one()
        assert (reminder.status, reminder.skip_reason) == ("skipped", "invitation_answered")


def test_expired_link_says_closed(client: TestClient, rt: Runtime, clock: FrozenClock) -> None:
    code = send_and_get_code(client, rt)
    clock.advance(timedelta(days=rt.settings.invitation_valid_days, seconds=1))
    page = client.get(f"/s/{code}")
    assert page.status_code == 410 and "avsluttet" in page.text
    assert client.post(f"/s/{code}", data={"csat": "3", "contact": "no"}).status_code == 303
    with rt.db.read_only() as session:
        assert session.execute(select(Response)).first() is None


def test_unknown_link_is_a_friendly_404(client: TestClient) -> None:
    page = client.get("/s/doesnotexist")
    assert page.status_code == 404 and "<form" not in page.text


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_p1_survey_page_names_the_configured_controller(
    client: TestClient, rt: Runtime, locale: str
) -> None:
    rt.settings.controller_name = "Annen Inkasso AS"  # not the default: the page must read it
    rt.settings.controller_org_no = "123 456 789"
    rt.settings.dpo_email = "dpo@annen-inkasso.example"
    # with its country code: a number without one is read in the country of the language
    customer = {"name": "Kari Nordmann", "phone": "+47 412 34 567", "locale": locale}
    text = html.unescape(client.get(f"/s/{send_and_get_code(client, rt, customer=customer)}").text)
    _ = translator(locale)
    assert f'lang="{locale}"' in text
    assert (
        _(
            "%(controller)s (org. no. %(org_no)s) is responsible for your personal data.",
            controller="Annen Inkasso AS",
            org_no="123 456 789",
        )
        in text
    )
    # the survey's own wording names the controller through its {controller} placeholder
    assert re.search(r"<legend>[^<]*Annen Inkasso AS[^<]*</legend>", text)
    assert "dpo@annen-inkasso.example" in text and "Example Collection" not in text
