"""The unanswered survey page is rendered once per version and language and the link's code put
in (``web/render.py``): it must be the page the template renders for that link, follow the
settings it shows, and never take a survey's own text for the code's place."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import send_and_get_code
from tilfreds.i18n import translator
from tilfreds.runtime import Runtime
from tilfreds.surveys import service as surveys
from tilfreds.surveys.service import DEFAULT_SLUG
from tilfreds.web import survey_view
from tilfreds.web.render import _env


def rendered_afresh(rt: Runtime, code: str, locale: str) -> str:
    """What ``survey.html`` renders for this link, without anything cached."""
    with rt.db.read_only() as session:
        published = surveys.by_slug(session, DEFAULT_SLUG)
    return _env.get_template("survey.html").render(
        _=translator(locale),
        lang=locale,
        settings=rt.settings,
        dev_phone=rt.dev_phone_enabled,
        code=code,
        version=published.version_id,
        view=survey_view.build(
            published.definition, locale, controller=rt.settings.controller_name
        ),
        languages=survey_view.LANGUAGE_NAMES,
        values={},
        error=None,
    )


@pytest.mark.parametrize("locale", ["nb", "en"])
def test_the_page_is_the_templates_for_each_link(
    client: TestClient, rt: Runtime, locale: str
) -> None:
    codes = [
        send_and_get_code(
            client,
            rt,
            external_id=f"case-{n}",
            customer={"name": "Kari Nordmann", "phone": f"412 34 56{n}", "locale": "nb-NO"},
        )
        for n in range(2)
    ]
    for code in codes:
        page = client.get(f"/s/{code}?lang={locale}")
        assert page.status_code == 200
        assert page.text == rendered_afresh(rt, code, locale)
        assert f'action="/s/{code}"' in page.text and f'action="/s/{code}/decline"' in page.text


def test_the_page_shows_the_settings_as_they_are_now(client: TestClient, rt: Runtime) -> None:
    code = send_and_get_code(client, rt)
    assert "Example Collection AS" in client.get(f"/s/{code}").text
    rt.settings.controller_name = "Other Controller AS"
    rt.settings.dpo_email = "dpo@other.example"
    page = client.get(f"/s/{code}").text
    assert "Other Controller AS" in page and "dpo@other.example" in page
    assert "Example Collection AS" not in page


def test_a_surveys_text_is_never_taken_for_the_codes_place(client: TestClient, rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        current = surveys.by_slug(session, DEFAULT_SLUG).definition
        title = {"nb": "Hei <tilfreds-code> og {{ code }}", "en": "Hi <tilfreds-code>"}
        surveys.publish(session, current.model_copy(update={"title": title}), now=rt.clock.now())
    code = send_and_get_code(client, rt)
    page = client.get(f"/s/{code}?lang=nb").text
    assert "<h1>Hei &lt;tilfreds-code&gt; og {{ code }}</h1>" in page
    assert page == rendered_afresh(rt, code, "nb")
