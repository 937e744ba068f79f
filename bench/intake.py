"""Intake over HTTP: M sequential ``POST /api/v1/interactions`` to the real app under uvicorn,
against the same client hitting a bare FastAPI ``POST /echo`` under the same uvicorn setup (the
limit). Reports requests/second, p50/p95 latency, and the round trips to the database per request
(counted in the server, on further requests after the timed ones)."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.common import (
    PUBLIC_URL,
    ROOT,
    SECRET,
    fresh_database,
    interaction_payload,
    open_database,
    progress,
)
from bench.servers import HOST
from tilfreds.operators.service import create_token
from tilfreds.people.models import Interaction

WARMUP = 20  # requests sent first and not measured, on both servers
COUNTED = 50  # requests sent after the timed ones with the round-trip counter on
STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class IntakeResult:
    server: str  # "tilfreds" or "echo"
    database: str  # "sqlite", "postgresql" or "-" for the echo app
    requests: int
    seconds: float
    latencies_ms: tuple[float, ...]
    round: int = 1
    counts: dict[str, int] | None = None  # database work of ``counted`` requests (tilfreds only)
    counted: int = 0

    def per_request(self, what: str) -> float:
        return (self.counts or {}).get(what, 0) / self.counted if self.counted else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20, method="inclusive")[18]


# the servers listen on the first free loopback port from here (override: TILFREDS_BENCH_PORT)
FIRST_PORT = int(os.environ.get("TILFREDS_BENCH_PORT", "18700"))
PORTS = 100


def _free_port() -> int:
    for port in range(FIRST_PORT, FIRST_PORT + PORTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {FIRST_PORT}-{FIRST_PORT + PORTS - 1}")


@contextmanager
def running_server(app: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``python -m bench.servers APP`` on a free loopback port; yield its base URL; stop it
    (SIGTERM, then SIGKILL if it lingers). It also stops itself after a bounded time."""
    with server_process(app, env) as (base, _proc):
        yield base


@contextmanager
def server_process(
    app: str, env: dict[str, str] | None = None, *, max_seconds: float = 900.0
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``running_server``, yielding the process too (to read its memory); it stops itself after
    ``max_seconds``."""
    port = _free_port()
    base = f"http://{HOST}:{port}"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    child_env.update(env or {})
    cmd = [sys.executable, "-m", "bench.servers", app, "--port", str(port),
           "--max-seconds", str(max_seconds)]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=log, stderr=log)
        try:
            _wait_until_up(proc, base, log)
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def _wait_until_up(proc: subprocess.Popen[bytes], base: str, log: Any) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(base_url=base, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read()}")
            try:
                client.get("/")  # any HTTP answer (404 included) means it is listening
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            return
    raise RuntimeError(f"server at {base} did not start within {STARTUP_SECONDS:.0f}s")


def hammer(
    base: str,
    path: str,
    bodies: list[dict[str, Any]],
    *,
    warmup: list[dict[str, Any]],
    expect: int,
    headers: dict[str, str],
    label: str,
) -> tuple[float, tuple[float, ...]]:
    """POST each body in turn on one keep-alive connection; wall time and per-request ms."""
    latencies: list[float] = []
    with (
        httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=30.0) as client,
        progress() as bar,
    ):
        for body in warmup:
            _expect(client.post(path, json=body), expect)
        task = bar.add_task(label, total=len(bodies))
        start = time.perf_counter()
        for body in bodies:
            t0 = time.perf_counter()
            response = client.post(path, json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            _expect(response, expect)
            bar.advance(task)
        elapsed = time.perf_counter() - start
    return elapsed, tuple(latencies)


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}, expected {status}: {response.text[:300]}"
        )


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_round(
    kinds: list[str], *, requests: int, workdir: Path, pg_url: str, round_no: int
) -> list[IntakeResult]:
    """The limit, tilfreds on each database, the limit again (its drift during the round)."""
    out = [replace(run_echo(requests=requests), round=round_no)]
    for kind in kinds:
        result = run_tilfreds(kind, requests=requests, workdir=workdir, pg_url=pg_url)
        out.append(replace(result, round=round_no))
    out.append(replace(run_echo(requests=requests), round=round_no))
    return out


def ratios(results: list[IntakeResult], kind: str) -> list[float]:
    """tilfreds on ``kind`` as a fraction of the limit, per round: its rate over the mean rate
    of the limit's runs just before and after it."""
    out = []
    for n in sorted({r.round for r in results}):
        echoes = [r.rate for r in results if r.round == n and r.server == "echo"]
        mine = [r.rate for r in results if r.round == n and r.database == kind]
        if echoes and mine:
            out.append(mine[0] / statistics.mean(echoes))
    return out


def run_tilfreds(kind: str, *, requests: int, workdir: Path, pg_url: str) -> IntakeResult:
    db = fresh_database(kind, workdir=workdir, pg_url=pg_url, name="intake")
    try:
        with db.unit_of_work() as session:
            token = create_token(session, name="bench", role="admin", now=datetime.now(UTC))
    finally:
        db.dispose()
    env = {
        "TILFREDS_DATABASE_URL": db.url,
        "TILFREDS_SECRET_KEY": SECRET,
        "TILFREDS_PUBLIC_URL": PUBLIC_URL,
        "TILFREDS_DATA_DIR": str(workdir),
    }
    bodies = [interaction_payload(n) for n in range(requests)]
    warmup = [interaction_payload(n, prefix="warmup") for n in range(WARMUP)]
    counted = [interaction_payload(n, prefix="counted") for n in range(COUNTED)]
    with running_server("tilfreds", env) as base:
        seconds, latencies = hammer(
            base,
            "/api/v1/interactions",
            bodies,
            warmup=warmup,
            expect=201,
            headers=_headers(token),
            label=f"{kind}: POST /api/v1/interactions",
        )
        counts = count_round_trips(base, counted, headers=_headers(token))
    _check_stored(db.url, requests + WARMUP + COUNTED)
    return IntakeResult(
        "tilfreds", kind, requests, seconds, latencies, counts=counts, counted=COUNTED
    )


def count_round_trips(
    base: str, bodies: list[dict[str, Any]], *, headers: dict[str, str]
) -> dict[str, int]:
    """What the server sent its database for ``bodies``, POSTed one after another."""
    with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=30.0) as client:
        _expect(client.post("/__bench/count"), 200)
        for body in bodies:
            _expect(client.post("/api/v1/interactions", json=body), 201)
        response = client.get("/__bench/counts")
        _expect(response, 200)
        counts: dict[str, int] = response.json()
        return counts


def run_echo(*, requests: int) -> IntakeResult:
    """The same bodies, headers and client against the bare app."""
    bodies = [interaction_payload(n) for n in range(requests)]
    warmup = [interaction_payload(n, prefix="warmup") for n in range(WARMUP)]
    with running_server("echo") as base:
        seconds, latencies = hammer(
            base,
            "/echo",
            bodies,
            warmup=warmup,
            expect=200,
            headers=_headers("tf_" + "x" * 43),
            label="bare FastAPI: POST /echo (limit)",
        )
    return IntakeResult("echo", "-", requests, seconds, latencies)


def _check_stored(url: str, expected: int) -> None:
    db = open_database(url)
    try:
        with db.read_only() as session:
            stored = session.execute(select(func.count()).select_from(Interaction)).scalar_one()
    finally:
        db.dispose()
    if stored != expected:
        raise RuntimeError(f"{stored} interactions stored, expected {expected}")
