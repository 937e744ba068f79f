"""The README's first command, driven as a person would: phone inbox -> survey -> dashboard.

Starts ``tilfreds demo`` as a real process on the embedded default and drives Debian's Chromium
with Playwright (``executable_path``; no browser download). Without Chromium the browser tests are
skipped, unless TILFREDS_REQUIRE_BROWSER=1 (as in CI), which turns that into a failure
(``conftest.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port, wait_until_up

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    env["TILFREDS_DATA_DIR"] = str(tmp_path / "data")
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tilfreds", "demo", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc, tmp_path / "demo.log")
        token = re.search(r"DEMO_TOKEN=(\S+)", (tmp_path / "demo.log").read_text())
        assert token, (tmp_path / "demo.log").read_text()
        yield base, token.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_person_goes_from_dev_phone_inbox_through_survey_to_dashboard(
    chromium: str, demo: tuple[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, token = demo
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone

        page.goto(f"{base}/login")
        page.fill("#token", token)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/dashboard")
        before = int(page.get_by_test_id("responses").inner_text())

        page.goto(f"{base}/dev/phone")
        thread = page.locator("section.thread[data-phone='+4741234567']")
        for _ in range(50):  # the in-process worker sends within a second or two
            if thread.count():
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(thread.locator(".bubble.out")).to_contain_text("Hei Kari!")
        expect(thread.locator(".bubble.out")).to_contain_text("STOPP")
        page.screenshot(path=str(tmp_path / "phone.png"))
        thread.locator(".bubble.out a").first.click()

        expect(page.locator("h1")).to_have_text(
            "Hvordan var kontakten med oss?"
        )  # the survey's title
        page.locator("label.score", has_text="4").click()
        page.get_by_label("Ja, dere kan kontakte meg").check()
        page.screenshot(path=str(tmp_path / "survey.png"))
        page.get_by_role("button", name="Send svar").click()
        expect(page.locator("h1")).to_have_text("Takk!")

        page.goto(f"{base}/dashboard")
        expect(page.get_by_test_id("responses")).to_have_text(str(before + 1))
        expect(page.locator("svg.bars")).to_be_visible()
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        browser.close()
    keep = os.environ.get("TILFREDS_SCREENSHOTS")  # a folder to keep the screenshots in
    for name in ("phone", "survey", "dashboard") if keep else ():
        shutil.copy(tmp_path / f"{name}.png", Path(keep) / f"{name}.png")


def test_api_reference_renders_offline_in_the_browser(chromium: str, demo: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _token = demo
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page()
        page.goto(f"{base}/docs")
        expect(page.get_by_text("/api/v1/interactions").first).to_be_visible(timeout=15_000)
        browser.close()
