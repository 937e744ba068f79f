"""Answering is voluntary (P8): the built-in survey lets a person skip any question, and says so."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import interaction_payload
from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.i18n import translator
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime
from tilfreds.surveys.service import DEFAULT_FILE, read_yaml
from tilfreds.worker import Worker

SKIP_ANY = "Answering is voluntary: you may skip any question. It takes less than a minute."


def survey_code(client: TestClient, rt: Runtime, locale: str = "nb") -> str:
    # with its country code: a number without one is read in the country of the language
    customer = {"name": "Kari Nordmann", "phone": "+47 412 34 567", "locale": locale}
    payload = interaction_payload(customer=customer)
    assert client.post("/api/v1/interactions", json=payload).status_code == 201
    Worker(rt).drain()
    text = client.get("/api/v1/dev/outbox").json()[0]["text"]
    found = re.search(r"/s/(\w+)", text)
    assert found, text
    return found.group(1)


def test_p8_every_question_of_the_default_survey_is_optional(client: TestClient) -> None:
    (survey,) = client.get("/api/v1/surveys").json()
    assert survey["questions"] and not any(q["required"] for q in survey["questions"])


@pytest.mark.parametrize(
    "form", [{"csat": "4"}, {"contact": "yes"}, {"csat": "2", "contact": "no"}]
)
def test_p8_a_person_may_skip_any_question(
    client: TestClient, rt: Runtime, form: dict[str, str]
) -> None:
    code = survey_code(client, rt)
    assert client.post(f"/s/{code}", data=form).status_code == 303
    with rt.db.read_only() as session:
        response = session.execute(select(Response)).scalar_one()
        assert sorted(a.question_key for a in response.answers) == sorted(form)
        assert response.contact_consent is (form.get("contact") == "yes")


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_p8_the_page_says_each_question_may_be_skipped_and_requires_none(
    client: TestClient, rt: Runtime, locale: str
) -> None:
    page = html.unescape(client.get(f"/s/{survey_code(client, rt, locale)}").text)
    assert translator(locale)(SKIP_ANY) in page
    assert not re.search(r"<input[^>]*\srequired", page)


def test_p8_the_shipped_default_survey_requires_no_question() -> None:
    definition = read_yaml(DEFAULT_FILE.read_text("utf-8"))
    assert definition.questions and not any(q.required for q in definition.questions)


def test_an_empty_form_stores_nothing_and_asks_for_one_answer(
    client: TestClient, rt: Runtime
) -> None:
    from sqlalchemy import func

    code = survey_code(client, rt)
    page = client.post(f"/s/{code}", data={})
    assert page.status_code == 422
    assert "Svar på minst ett spørsmål før du sender." in page.text
    with rt.db.read_only() as session:
        assert session.execute(select(func.count()).select_from(Response)).scalar_one() == 0
