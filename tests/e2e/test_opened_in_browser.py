"""The funnel's "opened" step in Debian's Chromium, under the page's own content policy (P2):
loading the page, its scripts run and all, records nothing (a scanner that runs scripts does as
much), nor do events a script makes up; a person's first touch of the visible page sends the
beacon, once."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.e2e.conftest import PHONE
from tests.e2e.test_respondent_in_browser import survey_code
from tilfreds.invitations.models import Invitation
from tilfreds.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]


def opened_at(rt: Runtime) -> datetime | None:
    with rt.db.read_only() as session:
        return session.execute(select(Invitation.opened_at)).scalar_one()


def test_p2_opening_the_page_and_touching_it_records_opened(
    client: TestClient, rt: Runtime, server: str, browser: Any
) -> None:
    code = survey_code(client, rt, "nb")
    page = browser.new_context(viewport=PHONE).new_page()  # the CSP applies
    beacons: list[str] = []
    page.on("request", lambda r: beacons.append(r.url) if r.url.endswith("/opened") else None)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{server}/s/{code}")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.visibilityState") == "visible"
    page.wait_for_timeout(300)
    # a scanner's script clicking and typing: made-up events, not a person's input
    page.evaluate(
        "document.querySelector('label.score').dispatchEvent(new PointerEvent('pointerdown',"
        " {bubbles: true})); document.dispatchEvent(new KeyboardEvent('keydown'))"
    )
    page.wait_for_timeout(300)
    assert (beacons, opened_at(rt), refused) == ([], None, [])  # loaded and shown: not yet
    page.locator("label.score", has_text="3").click()
    page.locator("label.score", has_text="4").click()  # a second touch sends nothing more
    deadline = time.monotonic() + 5
    while opened_at(rt) is None and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert opened_at(rt) == rt.clock.now()
    page.wait_for_timeout(200)
    assert beacons == [f"{server}/s/{code}/opened"]
    assert refused == []
