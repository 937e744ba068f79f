"""The README as a newcomer meets it: its production section, run as written against a scratch
PostgreSQL database, and docs that refer to nothing outside the repository.

Only what cannot run here is changed: the database URL, and the address ``serve`` listens on
(loopback, a free port). The block must put ``tilfreds`` on the PATH itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, wait_until_up
from tests.factories import interaction_payload

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent

pytestmark = pytest.mark.e2e


def production_block() -> str:
    section = README.read_text().split("## Running it for real", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the production section has a sh block"
    return match.group(1)


@pytest.fixture
def readme_run(scratch_pg: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    block = production_block()
    block = re.sub(r"TILFREDS_DATABASE_URL=\S+", f"TILFREDS_DATABASE_URL={scratch_pg}", block)
    block, served = re.subn(
        r"--host 0\.0\.0\.0 --port 8000", f"--host 127.0.0.1 --port {port}", block
    )
    assert served == 1, "the block starts `tilfreds serve --host 0.0.0.0 --port 8000`"
    (tmp_path / ".venv").symlink_to(VENV)  # the clone's .venv, as `make install` leaves it
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    env["PATH"] = os.pathsep.join(  # tilfreds is not on the PATH until the block puts it there
        p for p in env.get("PATH", "").split(os.pathsep) if not Path(p, "tilfreds").exists()
    )
    log = tmp_path / "readme.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block + "\nwait\n"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc, log)
        yield base, log
    finally:
        with contextlib.suppress(ProcessLookupError):  # the block may have stopped on an error
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_readme_production_section_runs_as_written(readme_run: tuple[str, Path]) -> None:
    base, log = readme_run
    output = log.read_text()
    assert "database is up to date" in output
    token = re.search(r"^(tf_\S+)$", output, re.MULTILINE)
    assert token, output
    auth = {"Authorization": f"Bearer {token.group(1)}"}
    just_now = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()  # the server's own clock
    payload = interaction_payload(occurred_at=just_now)
    created = httpx.post(f"{base}/api/v1/interactions", json=payload, headers=auth)
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + 30
    while not (outbox := httpx.get(f"{base}/api/v1/dev/outbox", headers=auth).json()):
        assert time.monotonic() < deadline, log.read_text()  # the worker process sends it
        time.sleep(0.2)
    assert outbox[0]["text"].startswith("Hei Kari!")
    assert "https://survey.example.no/s/" in outbox[0]["text"]


def test_readme_and_docs_refer_only_to_files_in_the_repository() -> None:
    outside = []
    for doc in [README, *(ROOT / "docs").glob("*.md")]:
        text = doc.read_text()
        links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
        relative = [t for t in links if not re.match(r"[a-z]+:", t)]  # not https:, mailto:
        for target in [*relative, *re.findall(r"\.\./[\w./-]+", text)]:
            path = (doc.parent / target).resolve()
            if not (path.is_relative_to(ROOT) and path.exists()):
                outside.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not outside, outside
