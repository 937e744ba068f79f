"""The respondent in Debian's Chromium on a phone-sized screen: answering in nb and in en, a link
scanner's GET that leaves the link working, a kind page for an expired link, identity confirmation
by name and by SMS code in nb and en (P2) and "not me" (P17), and axe-core finding no
accessibility violation on any respondent page (WCAG 2.1 AA and axe's best practices)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.e2e.conftest import PHONE, skip_unless_required
from tests.factories import interaction_payload
from tests.test_identity import ask_identity
from tilfreds.invitations.models import Invitation
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def page(browser: Any) -> Any:
    """A phone-sized page that lets axe-core's script in (the pages' CSP would refuse it)."""
    return browser.new_context(viewport=PHONE, bypass_csp=True).new_page()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    if not AXE.exists():
        skip_unless_required(f"axe-core is missing at {AXE} (bash scripts/ensure-axe)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run(document)).violations.map("
        "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html)}))"
    )
    return list(found)


def accessible(page: Any) -> None:
    assert axe_violations(page) == [], page.url


def survey_code(client: TestClient, rt: Runtime, locale: str, n: int = 1) -> str:
    """The link code of a fresh invitation for person ``n`` speaking ``locale``."""
    customer = {"name": "Kari Nordmann", "phone": f"+4741{n:06d}", "locale": locale}
    payload = interaction_payload(external_id=f"e2e-{n}", customer=customer)
    assert client.post("/api/v1/interactions", json=payload).status_code == 201
    with rt.db.read_only() as session:
        query = select(Invitation.code).order_by(Invitation.id.desc()).limit(1)
        return str(session.execute(query).scalar_one())


def responses(rt: Runtime) -> list[Response]:
    with rt.db.read_only() as session:
        return list(session.execute(select(Response)).scalars())


def test_a_respondent_answers_in_norwegian_on_a_phone(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    code = survey_code(client, rt, "nb")
    page.goto(f"{server}/s/{code}")
    assert page.locator("html").get_attribute("lang") == "nb"
    accessible(page)
    page.locator("label.score", has_text="2").click()
    page.get_by_label("Hva kunne vi gjort bedre?").fill("Svare raskere på e-post")
    page.get_by_label("Ja, dere kan kontakte meg").check()
    page.get_by_role("button", name="Send svar").click()
    page.wait_for_url(f"{server}/s/{code}/thanks*")
    assert "Takk" in page.inner_text("h1")
    accessible(page)
    (response,) = responses(rt)
    assert response.locale == "nb" and response.contact_consent is True
    assert {a.question_key for a in response.answers} == {"csat", "improve", "contact"}


def test_a_respondent_switches_to_english_and_answers(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    code = survey_code(client, rt, "nb")
    page.goto(f"{server}/s/{code}")
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "How satisfied are you" in page.inner_text("main")
    accessible(page)
    page.locator("label.score", has_text="5").click()
    page.get_by_role("button", name="Send answers").click()
    page.wait_for_url(f"{server}/s/{code}/thanks*")
    assert page.inner_text("h1") == "Thank you!"
    (response,) = responses(rt)
    assert response.locale == "en" and [a.value_int for a in response.answers] == [5]


def test_a_scanners_get_leaves_the_link_working(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    code = survey_code(client, rt, "nb")
    for _ in range(3):  # a mail or SMS link scanner fetches the page, perhaps more than once
        assert httpx.get(f"{server}/s/{code}", follow_redirects=False).status_code == 200
    assert httpx.head(f"{server}/s/{code}").status_code in {200, 405}
    assert responses(rt) == []
    page.goto(f"{server}/s/{code}")
    page.locator("label.score", has_text="4").click()
    page.get_by_role("button", name="Send svar").click()
    page.wait_for_url(f"{server}/s/{code}/thanks*")
    assert len(responses(rt)) == 1


def test_an_expired_link_says_so_kindly(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    code = survey_code(client, rt, "en")
    with rt.db.unit_of_work() as session:
        session.execute(select(Invitation)).scalar_one().expires_at = rt.clock.now()
    page.goto(f"{server}/s/{code}")
    text = page.inner_text("main")
    assert "This survey is closed." in text and "nothing more you need to do" in text
    accessible(page)


def test_every_respondent_page_has_no_accessibility_violations(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    code = survey_code(client, rt, "fi")
    for lang in ("nb", "nn", "sv", "da", "en", "fi"):  # Finnish last: the steps below use it
        page.goto(f"{server}/s/{code}?lang={lang}")
        accessible(page)
    page.get_by_role("button", name="Lähetä vastaukset").click()  # nothing answered: 422 page
    assert page.locator("[role=alert]").count() == 1
    accessible(page)
    page.get_by_role("button", name="En halua vastata").click()  # declining
    assert "muistutuksia" in page.inner_text("main")
    accessible(page)
    page.goto(f"{server}/s/NOTACODE")  # an invalid link
    accessible(page)
    answered = survey_code(client, rt, "sv", 2)
    page.goto(f"{server}/s/{answered}")
    page.locator("label.score", has_text="3").click()
    page.get_by_role("button", name="Skicka svar").click()
    page.wait_for_url(f"{server}/s/{answered}/thanks*")
    page.goto(f"{server}/s/{answered}")  # answered already
    accessible(page)


def test_a_follow_up_question_shows_only_when_its_condition_holds(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    code = survey_code(client, rt, "en")
    page.goto(f"{server}/s/{code}")
    better = page.get_by_label("What could we have done better?")
    assert not better.is_visible()  # with JavaScript, hidden until a score calls for it
    page.locator("label.score", has_text="2").click()
    assert better.is_visible()
    page.locator("label.score", has_text="5").click()
    assert not better.is_visible()


def _code_from_sms(rt: Runtime) -> str:
    Worker(rt).drain()  # the invitation too, not sent before
    with rt.db.read_only() as session:
        body = dev.inbox(session, rt.keys)[0].body
    match = re.search(r": (\d{6})\.", body)
    assert match, body
    return match.group(1)


@pytest.mark.parametrize(
    ("lang", "send", "go_on", "wrong_said"),
    [
        ("nb", "Send meg en kode", "Fortsett", "Det var ikke riktig."),
        ("en", "Send me a code", "Continue", "That was not right."),
    ],
)
def test_p2_a_respondent_confirms_with_a_code_by_sms_then_answers(
    client: TestClient,
    rt: Runtime,
    server: str,
    page: Any,
    lang: str,
    send: str,
    go_on: str,
    wrong_said: str,
) -> None:
    ask_identity(rt, "sms_code")
    code = survey_code(client, rt, lang)
    page.goto(f"{server}/s/{code}")
    accessible(page)
    page.get_by_role("button", name=send).click()
    field = page.locator("input[autocomplete=one-time-code]")
    assert field.is_visible()
    accessible(page)
    secret = _code_from_sms(rt)
    field.fill("000000" if secret != "000000" else "111111")
    page.get_by_role("button", name=go_on).click()
    assert wrong_said in page.inner_text("[role=alert]")
    accessible(page)
    page.locator("input[autocomplete=one-time-code]").fill(secret)
    page.get_by_role("button", name=go_on).click()
    page.locator("label.score", has_text="4").click()
    page.locator("form.survey button[type=submit]").click()
    page.wait_for_url(f"{server}/s/{code}/thanks*")
    assert len(responses(rt)) == 1


@pytest.mark.parametrize(
    ("lang", "question", "yes", "go_on"),
    [
        ("nb", "Er du Kari N.?", "Ja, det er meg", "Fortsett"),
        ("en", "Are you Kari N.?", "Yes, that is me", "Continue"),
    ],
)
def test_p2_a_respondent_confirms_their_name_then_answers(
    client: TestClient,
    rt: Runtime,
    server: str,
    page: Any,
    lang: str,
    question: str,
    yes: str,
    go_on: str,
) -> None:
    ask_identity(rt, "name")
    code = survey_code(client, rt, lang)
    page.goto(f"{server}/s/{code}")
    assert question in page.inner_text("legend")
    accessible(page)
    page.get_by_label(yes).check()
    page.get_by_role("button", name=go_on).click()
    page.locator("label.score", has_text="5").click()
    page.locator("form.survey button[type=submit]").click()
    page.wait_for_url(f"{server}/s/{code}/thanks*")
    assert len(responses(rt)) == 1


def test_p17_not_me_ends_the_survey_kindly_and_every_identity_page_is_accessible(
    client: TestClient, rt: Runtime, server: str, page: Any
) -> None:
    ask_identity(rt, "name")
    code = survey_code(client, rt, "en")
    page.goto(f"{server}/s/{code}")
    page.get_by_label("No, that is not me").check()
    page.get_by_role("button", name="Continue").click()
    assert page.inner_text("h1") == "Thank you for letting us know"
    accessible(page)
    ask_identity(rt, "interaction")
    other = survey_code(client, rt, "nn", 2)
    page.goto(f"{server}/s/{other}")
    accessible(page)
    for wrong in ("På chat", "Per brev", "På e-post"):  # the interaction was by phone
        page.get_by_label(wrong).check()
        page.get_by_role("button", name="Hald fram").click()
    assert "minutt" in page.inner_text("[role=alert]")  # locked for a while, said kindly
    accessible(page)
