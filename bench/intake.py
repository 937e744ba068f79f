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
    paired_with: str = ""  # the limit: the database of the tilfreds run it was interleaved with

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


SLICE = 25  # requests sent to one server before switching to the other


def hammer_paired(
    servers: list[tuple[str, str, dict[str, str], int]],
    bodies: list[dict[str, Any]],
    *,
    warmup: list[dict[str, Any]],
    label: str,
) -> list[tuple[float, tuple[float, ...]]]:
    """POST each body in turn to every server, ``SLICE`` requests at a time to one server and
    then the same slice to the next, each on its own keep-alive connection; per server its wall
    time (summed over its slices) and per-request ms. Alternating in short slices puts both
    servers under the same load from the rest of the machine, which a shared machine's load
    swings would otherwise turn into most of the ratio. A server is (base, path, headers,
    expected status)."""
    clients = [
        httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=30.0)
        for base, _path, headers, _status in servers
    ]
    seconds = [0.0] * len(servers)
    latencies: list[list[float]] = [[] for _ in servers]
    try:
        for client, (_base, path, _h, status) in zip(clients, servers, strict=True):
            for body in warmup:
                _expect(client.post(path, json=body), status)
        with progress() as bar:
            task = bar.add_task(label, total=len(bodies))
            for first in range(0, len(bodies), SLICE):
                chunk = bodies[first : first + SLICE]
                for n, (client, (_base, path, _h, status)) in enumerate(
                    zip(clients, servers, strict=True)
                ):
                    start = time.perf_counter()
                    for body in chunk:
                        t0 = time.perf_counter()
                        response = client.post(path, json=body)
                        latencies[n].append((time.perf_counter() - t0) * 1000)
                        _expect(response, status)
                    seconds[n] += time.perf_counter() - start
                bar.advance(task, len(chunk))
    finally:
        for client in clients:
            client.close()
    return [(t, tuple(lat)) for t, lat in zip(seconds, latencies, strict=True)]


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
    """For each database, tilfreds and the limit side by side, their requests interleaved."""
    out = []
    for kind in kinds:
        mine, echo = run_pair(kind, requests=requests, workdir=workdir, pg_url=pg_url)
        out += [replace(echo, round=round_no), replace(mine, round=round_no)]
    return out


def ratios(results: list[IntakeResult], kind: str) -> list[float]:
    """tilfreds on ``kind`` as a fraction of the limit it was interleaved with, per round."""
    out = []
    for n in sorted({r.round for r in results}):
        echoes = [r.rate for r in results if r.round == n and r.paired_with == kind]
        mine = [r.rate for r in results if r.round == n and r.database == kind]
        if echoes and mine:
            out.append(mine[0] / echoes[0])
    return out


def run_pair(
    kind: str, *, requests: int, workdir: Path, pg_url: str
) -> tuple[IntakeResult, IntakeResult]:
    """tilfreds on ``kind`` and the bare endpoint, both running, hit in alternating slices."""
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
    with running_server("tilfreds", env) as base, running_server("echo") as echo_base:
        (mine_s, mine_ms), (echo_s, echo_ms) = hammer_paired(
            [
                (base, "/api/v1/interactions", _headers(token), 201),
                (echo_base, "/echo", _headers("tf_" + "x" * 43), 200),
            ],
            bodies,
            warmup=warmup,
            label=f"{kind}: POST /api/v1/interactions | bare FastAPI POST /echo",
        )
        counts = count_round_trips(base, counted, headers=_headers(token))
    _check_stored(db.url, requests + WARMUP + COUNTED)
    mine = IntakeResult("tilfreds", kind, requests, mine_s, mine_ms, counts=counts, counted=COUNTED)
    return mine, IntakeResult("echo", "-", requests, echo_s, echo_ms, paired_with=kind)


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


def _check_stored(url: str, expected: int) -> None:
    db = open_database(url)
    try:
        with db.read_only() as session:
            stored = session.execute(select(func.count()).select_from(Interaction)).scalar_one()
    finally:
        db.dispose()
    if stored != expected:
        raise RuntimeError(f"{stored} interactions stored, expected {expected}")
