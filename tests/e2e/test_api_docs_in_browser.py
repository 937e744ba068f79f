"""/docs as a newcomer uses it: paste a token under "Authorize", "Try it out" the example
interaction, and see it received (a real ``tilfreds demo`` process, Debian's Chromium)."""

from __future__ import annotations

import pytest

from tests.e2e.test_demo_in_browser import FLAGS, demo

pytestmark = pytest.mark.e2e
__all__ = ["demo"]  # the fixture, shared with the demo's own browser test


def test_authorize_then_try_it_out_reports_the_example_interaction(
    chromium: str, demo: tuple[str, str]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, token = demo
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/docs")
        page.locator("button.authorize").first.click()
        page.locator(".modal-ux input").first.fill(token)
        page.locator(".modal-ux button.authorize").click()
        page.locator(".modal-ux button.btn-done").click()

        op = page.locator("#operations-interactions-receive_interaction_api_v1_interactions_post")
        op.locator(".opblock-summary").click()
        op.locator("button.try-out__btn").click()
        op.locator("button.execute").click()
        status = op.locator(".live-responses-table tbody .response-col_status").first
        expect(status).to_have_text("201", timeout=15_000)
        browser.close()
