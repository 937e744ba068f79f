"""Screenshots of the respondent pages for docs/surveys.md, taken in Debian's Chromium on a
phone-sized screen: the survey in Norwegian (bokmål) and English, the thank-you page, and the
identity step (a survey with ``identity: name``, then ``sms_code``) in both languages.

Runs ``tilfreds demo`` on a scratch SQLite database (port 8741, or the first argument) and writes
PNGs under docs/img/. Usage: ``.venv/bin/python scripts/survey_screenshots.py [PORT]``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).parents[1]
OUT = ROOT / "docs" / "img"
PHONE = {"width": 390, "height": 844}
PERSON = "+4799887766"


def _start(port: int, data_dir: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "TILFREDS_DATA_DIR": data_dir}
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "tilfreds"), "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("DEMO_TOKEN="):
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit(f"tilfreds demo stopped before it was ready (exit {proc.wait()})")


def _api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})


def _ask_identity(base: str, token: str, kind: str) -> None:
    """Publish the default survey again, confirming identity so."""
    api = _api(base, token)
    definition = api.get("/api/v1/surveys/csat").json()["definition"]
    published = api.post("/api/v1/surveys", json={**definition, "identity": kind})
    assert published.status_code in {200, 201}, published.text


def _code(base: str, token: str, person: str = PERSON) -> str:
    api = _api(base, token)
    for _ in range(100):  # the token is printed just before the server starts listening
        try:
            if api.get("/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    payload = {
        "external_id": f"screenshot-{person}",
        "customer": {"name": "Kari Nordmann", "phone": person, "locale": "nb"},
        "channel": "phone",
        "reason": "Payment plan",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600)),
    }
    assert api.post("/api/v1/interactions", json=payload).status_code in {200, 201}
    for _ in range(100):
        for message in api.get("/api/v1/dev/outbox").json():
            found = re.search(r"/s/(\w+)", message["text"])
            if message["to"] == person and found:
                return found.group(1)
        time.sleep(0.2)
    raise SystemExit("the invitation was not sent")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8741
    base = f"http://127.0.0.1:{port}"
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        proc, token = _start(port, data_dir)
        try:
            code = _code(base, token)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox"]
                )
                page = browser.new_context(viewport=PHONE, device_scale_factor=1).new_page()
                for lang, name in (("nb", "survey-nb.png"), ("en", "survey-en.png")):
                    page.goto(f"{base}/s/{code}?lang={lang}")
                    page.locator("label.score", has_text="2").click()
                    page.screenshot(path=OUT / name, full_page=True)
                page.get_by_role("button", name="Send answers").click()
                page.wait_for_url(f"{base}/s/{code}/thanks*")
                page.screenshot(path=OUT / "thanks-en.png", full_page=True)
                for kind, person in (("name", "+4799887701"), ("sms_code", "+4799887702")):
                    _ask_identity(base, token, kind)
                    asked = _code(base, token, person)
                    for lang in ("nb", "en"):
                        page.goto(f"{base}/s/{asked}?lang={lang}")
                        page.screenshot(path=OUT / f"identity-{kind}-{lang}.png", full_page=True)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
