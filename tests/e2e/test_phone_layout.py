"""The console and the survey look right on a phone (375x667) in Debian's Chromium.

The console navigation takes at most two rows with no label broken inside itself; every question
title sits inside its box, in all six languages; nothing scrolls sideways.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import T0
from tests.e2e.conftest import PHONE
from tests.factories import interaction_payload
from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.operators.service import create_token
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database", ["sqlite"], indirect=True)]

# Rectangles of the navigation's items, of each question box and its title, and the page width.
MEASURE = """() => {
  const box = e => { const r = e.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, height: r.height}; };
  const nav = document.querySelector('nav.top');
  return {
    scrollWidth: document.scrollingElement.scrollWidth,
    items: nav ? [...nav.querySelectorAll('a, button')].map(box) : [],
    questions: [...document.querySelectorAll('fieldset')].map(f => ({
      box: box(f), title: box(f.querySelector('legend')),
      border: parseFloat(getComputedStyle(f).borderTopWidth)})),
  };
}"""


def test_console_navigation_takes_at_most_two_rows_on_a_phone(
    rt: Runtime, server: str, browser_page: Any
) -> None:
    with rt.db.unit_of_work() as session:
        token = create_token(session, name="Kari Nordmann-Johansen", role="admin", now=T0)
    page = browser_page
    page.goto(f"{server}/login")
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/dashboard")
    for path in ("/dashboard", "/", "/login"):
        page.goto(server + path)
        seen = page.evaluate(MEASURE)
        one_line = min(item["height"] for item in seen["items"])
        assert all(item["height"] < 1.5 * one_line for item in seen["items"]), (path, seen)
        assert len({round(item["top"]) for item in seen["items"]}) <= 2, (path, seen)
        assert seen["scrollWidth"] <= PHONE["width"], (path, seen)


def test_question_titles_sit_inside_their_boxes_on_a_phone(
    client: TestClient, rt: Runtime, server: str, browser_page: Any
) -> None:
    for i, locale in enumerate(SUPPORTED_LOCALES):
        customer = {"name": "Kari Nordmann", "phone": f"+47{41000000 + i}", "locale": locale}
        payload = interaction_payload(external_id=f"case-{locale}", customer=customer)
        assert client.post("/api/v1/interactions", json=payload).status_code == 201
    Worker(rt).drain()
    outbox = client.get("/api/v1/dev/outbox").json()
    codes = [m.group(1) for msg in outbox if (m := re.search(r"/s/(\w+)", msg["text"]))]
    assert len(codes) == len(SUPPORTED_LOCALES)
    for code in codes:
        browser_page.goto(f"{server}/s/{code}")
        seen = browser_page.evaluate(MEASURE)
        assert seen["questions"] and seen["scrollWidth"] <= PHONE["width"], seen
        for q in seen["questions"]:
            box, title = q["box"], q["title"]
            assert title["top"] >= box["top"] + q["border"], (code, q)  # not on the top border
            assert title["bottom"] <= box["bottom"] and title["left"] >= box["left"], (code, q)
            assert title["right"] <= box["right"], (code, q)
