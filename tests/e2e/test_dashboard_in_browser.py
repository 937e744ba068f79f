"""The dashboard's questions in Debian's Chromium: a survey with NPS and CES shows each question's
figures once five people have answered and explains why they are hidden before (P4), and axe-core
finds no accessibility violation on the dashboard either way."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.test_respondent_in_browser import accessible
from tests.test_dashboard_questions import answer
from tests.test_surveys import EVERY_KIND, publish
from tilfreds.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]


def test_p4_dashboard_shows_nps_and_ces_from_five_answers_and_explains_them_before(
    client: TestClient, rt: Runtime, server: str, browser: Any, admin_token: str
) -> None:
    publish(client, EVERY_KIND)
    for n in range(4):
        answer(client, rt, n)
    page = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True).new_page()
    page.goto(f"{server}/login")
    page.fill("#token", admin_token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/dashboard")
    nps = page.get_by_test_id("q-every-kind-nps")
    assert "Hidden until at least 5 people have answered" in nps.inner_text()
    assert page.get_by_test_id("q-every-kind-nps-score").count() == 0
    assert page.get_by_test_id("q-every-kind-ces-distribution").count() == 0
    accessible(page)

    answer(client, rt, 4)
    page.reload()
    assert page.get_by_test_id("q-every-kind-nps-score").inner_text() == "0.0"
    assert page.get_by_test_id("q-every-kind-nps-promoters").text_content() == "promoters 40 %"
    assert page.get_by_test_id("q-every-kind-nps-detractors").text_content() == "detractors 40 %"
    assert page.get_by_test_id("q-every-kind-ces-score").inner_text() == "4.2"
    assert page.get_by_test_id("q-every-kind-ces-distribution").is_visible()
    assert page.get_by_test_id("q-every-kind-nps-hidden").count() == 0
    accessible(page)
