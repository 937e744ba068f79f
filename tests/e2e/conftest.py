"""What the end-to-end tests need from the machine, and the one place they may skip.

A missing Chromium or PostgreSQL skips a test, unless TILFREDS_REQUIRE_BROWSER=1 (as in CI),
which turns every skip in tests/e2e into a failure; a missing PostgreSQL also fails under
TILFREDS_REQUIRE_POSTGRES=1, as it does everywhere else.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import uvicorn
from sqlalchemy import make_url

from tests.conftest import PG_URL
from tests.peers.jasmin import jasmin  # noqa: F401 - the Jasmin peer, a session fixture
from tests.postgres import prepare_postgres
from tilfreds.app import create_app
from tilfreds.runtime import Runtime

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE_BROWSER = "TILFREDS_REQUIRE_BROWSER"
REQUIRE_POSTGRES = "TILFREDS_REQUIRE_POSTGRES"


def skip_unless_required(reason: str, *required_by: str) -> NoReturn:
    for variable in (REQUIRE_BROWSER, *required_by):
        if os.environ.get(variable) == "1":
            pytest.fail(f"{reason}, and {variable}=1 requires it")
    pytest.skip(reason)


def chromium_or_skip(path: str = CHROMIUM) -> str:
    if not Path(path).exists():
        skip_unless_required(f"Chromium is missing at {path} (apt-get install chromium)")
    return path


def postgres_or_skip(url: str) -> str:
    """``url``'s database, created if needed and emptied."""
    try:
        prepare_postgres(url)
    except Exception as exc:  # unreachable server
        skip_unless_required(f"PostgreSQL is unreachable at {url}: {exc}", REQUIRE_POSTGRES)
    return url


@pytest.fixture
def chromium() -> str:
    return chromium_or_skip()


@pytest.fixture
def scratch_pg() -> str:
    """A PostgreSQL database of its own, next to the test database."""
    url = make_url(PG_URL)
    return postgres_or_skip(
        url.set(database=f"{url.database}_readme").render_as_string(hide_password=False)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(
    base: str, proc: subprocess.Popen[Any], log: Path, *, seconds: float = 60
) -> None:
    """Poll ``base``/healthz until it answers, failing with the process's log if it dies or takes
    longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


PHONE = {"width": 375, "height": 667}


@pytest.fixture
def server(rt: Runtime) -> Iterator[str]:
    """The app for ``rt`` served by uvicorn in a thread, on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(create_app(rt), log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def browser_page(browser: Any) -> Any:
    """A page in a phone-sized window."""
    return browser.new_context(viewport=PHONE).new_page()
