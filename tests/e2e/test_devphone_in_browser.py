"""The dev phone's reply form in a real browser (Debian's Chromium): a reply typed on the page is
played, and the same form posted by a page on another port of this machine changes nothing (P7).

Starts ``tilfreds demo`` on loopback port 18210 and a would-be attacker's page on 18211.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CHROMIUM, chromium_or_skip

DEMO_PORT, ATTACKER_PORT = 18210, 18211
BASE = f"http://127.0.0.1:{DEMO_PORT}"
PHONE = "+4741234567"  # Kari, one of the demo's fresh invitations

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_token(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    env["TILFREDS_DATA_DIR"] = str(tmp_path / "data")
    log_path = tmp_path / "demo.log"
    with log_path.open("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tilfreds", "demo", "--port", str(DEMO_PORT)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not _healthy():
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            token = re.search(r"DEMO_TOKEN=(\S+)", log_path.read_text())
            assert token, log_path.read_text()
            yield token.group(1)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _healthy() -> bool:
    try:
        return httpx.get(f"{BASE}/healthz").status_code == 200
    except httpx.TransportError:
        return False


ATTACK = f"""<!doctype html><title>win a prize</title>
<form method="post" action="{BASE}/dev/phone/reply">
<input type="hidden" name="phone" value="{PHONE}"><input type="hidden" name="text" value="STOPP">
<button type="submit">Claim</button></form>"""


class _Attacker(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ATTACK.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", ATTACKER_PORT), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{ATTACKER_PORT}/"
    finally:
        server.shutdown()
        server.server_close()


def replies_on_phone(token: str) -> list[str]:
    outbox = httpx.get(f"{BASE}/api/v1/dev/outbox", headers={"Authorization": f"Bearer {token}"})
    return [m["text"] for m in outbox.json() if m["direction"] == "in"]


def test_p7_the_reply_form_works_from_its_page_and_not_from_another_site(
    demo_token: str, attacker_page: str
) -> None:
    chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page()
        page.goto(f"{BASE}/dev/phone")
        thread = page.locator(f"section.thread[data-phone='{PHONE}']")
        for _ in range(50):  # the in-process worker sends within a second or two
            if thread.count():
                break
            page.wait_for_timeout(200)
            page.reload()

        page.goto(attacker_page)
        with page.expect_response(f"{BASE}/dev/phone/reply") as refused:
            page.get_by_role("button", name="Claim").click()
        assert refused.value.status == 403
        assert replies_on_phone(demo_token) == []

        page.goto(f"{BASE}/dev/phone")
        thread.locator("input[name=text]").fill("Stopp takk")
        thread.get_by_role("button", name="Send").click()
        expect(thread.locator(".bubble.in")).to_contain_text("Stopp takk")
        browser.close()
    assert replies_on_phone(demo_token) == ["Stopp takk"]
