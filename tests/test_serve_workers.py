"""``tilfreds serve --workers N``: N web processes on one socket, on PostgreSQL; refused on
SQLite (one writer, and the send worker runs inside the one process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.factories import interaction_payload
from tests.test_cli import env_for, run_cli
from tilfreds.runtime import Runtime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _up(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            httpx.get(f"{base}/", trust_env=False, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def test_several_web_processes_share_the_port_on_postgresql(rt: Runtime, admin_token: str) -> None:
    if rt.settings.is_embedded:
        result = run_cli(rt, "serve", "--workers", "2", "--port", str(_free_port()))
        assert result.returncode == 2 and "--workers needs PostgreSQL" in result.stderr
        return
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tilfreds", "serve", "--workers", "2", "--port", str(port)],
        env={**env, **env_for(rt)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _up(base, proc)
        assert len(_children(proc.pid)) >= 2  # the two web processes (and spawn's tracker)
        rows = [interaction_payload(external_id=f"w-{n}") for n in range(40)]
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {admin_token}"
            for _ in range(2):  # sent twice: the second time changes nothing
                answer = client.post("/api/v1/interactions/batch", json={"interactions": rows})
                assert answer.status_code == 200, answer.text
                assert answer.headers["connection"] == "close"  # the next goes where it is free
            assert answer.json()["existing"] == 40
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert "Traceback" not in output
