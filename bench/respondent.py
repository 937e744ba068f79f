"""The respondent on PostgreSQL: each respondent GETs the survey page ``/s/{code}`` and POSTs
the answers, one invitation each (made beforehand by the real intake), against two tilfreds
server processes on one port; the same client, the same way, against a bare Starlette app with
the same routes in two processes (the limit). The two are hit in alternating slices, so the
machine's load swings hit both alike. Reports answers/s, GET and POST p50/p95/p99, the servers'
and the database's CPU per answer, the client's own CPU share, and the round trips a GET and a
POST send to the database (counted in one server, on further respondents after the timed ones)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.common import (
    PUBLIC_URL,
    ROOT,
    SECRET,
    NullTransport,
    fresh_database,
    interaction_in,
    make_runtime,
)
from bench.intake import _free_port
from bench.respondent_client import Connection, Respondent, Timings, answer_all, open_all
from bench.servers import HOST
from tilfreds.db import Database
from tilfreds.invitations.batch import receive_interactions
from tilfreds.invitations.models import Invitation
from tilfreds.surveys.service import DEFAULT_SLUG, by_slug

PROCESSES = 2  # server processes per app, on one port
SLICE = 100  # respondents sent to one server before switching to the other
WARMUP = 40  # respondents per server before the timed ones (each process loads its caches)
COUNTED = 20  # respondents after the timed ones, with the round-trip counter on
INTAKE_BATCH = 500
STARTUP_SECONDS = 60.0
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Side:
    """One server's figures over its timed slices."""

    server: str  # "tilfreds" or "bare"
    respondents: int
    seconds: float
    get_ms: tuple[float, ...]
    post_ms: tuple[float, ...]
    server_cpu: float  # seconds, its processes together
    machine_cpu: float  # seconds, every process on the machine (the database's included)
    client_cpu: float  # seconds

    @property
    def rate(self) -> float:
        return self.respondents / self.seconds

    def cpu_ms_per_request(self, what: str) -> float:
        """CPU milliseconds a request (a GET or a POST) of the ``server`` processes, the
        ``client``, or the whole ``machine`` (the database, the client and anything else)."""
        seconds = {"server": self.server_cpu, "client": self.client_cpu}.get(what, self.machine_cpu)
        return seconds * 1000 / (2 * self.respondents)

    @property
    def client_share(self) -> float:
        """The client's CPU over the wall time: the part of one core it kept busy."""
        return self.client_cpu / self.seconds


def percentile(values: tuple[float, ...], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass(frozen=True)
class RespondentResult:
    tilfreds: Side
    bare: Side
    connections: int
    get_trips: dict[str, int]  # database work of COUNTED GETs
    post_trips: dict[str, int]  # and of their POSTs
    load: str  # the load average as the run ended

    @property
    def ratio(self) -> float:
        return self.tilfreds.rate / self.bare.rate

    def per(self, counts: dict[str, int], what: str = "round_trips") -> float:
        return counts.get(what, 0) / COUNTED


# --- setup ---------------------------------------------------------------------------------


def _form(n: int, version_id: int) -> bytes:
    """A varied, plausible answer: every score, a comment from the dissatisfied now and then,
    consent given or not."""
    csat = 1 + n % 5
    body = f"version={version_id}&lang=nb&csat={csat}&contact={'yes' if n % 3 else 'no'}"
    if csat <= 3 and n % 2:
        body += "&improve=Raskere+svar+p%C3%A5+telefon"
    return body.encode("ascii")


def make_respondents(db: Database, n: int, *, workdir: Path) -> list[Respondent]:
    """``n`` fresh invitations through the real intake service, each with its answers."""
    rt = make_runtime(db, workdir=workdir, batch_size=1, transport=NullTransport())
    for start in range(0, n, INTAKE_BATCH):
        rows = [interaction_in(i) for i in range(start, min(start + INTAKE_BATCH, n))]
        with db.unit_of_work() as session:
            receive_interactions(
                session, rt.keys, rows, timing=rt.timing(), now=datetime.now(UTC), actor="bench"
            )
    with db.read_only() as session:
        version_id = by_slug(session, DEFAULT_SLUG).version_id
        codes = list(session.execute(select(Invitation.code).order_by(Invitation.id)).scalars())
    if len(codes) != n:
        raise RuntimeError(f"intake made {len(codes)} invitations, expected {n}")
    return [Respondent(code, _form(i, version_id)) for i, code in enumerate(codes)]


# --- servers -------------------------------------------------------------------------------


@contextmanager
def processes(app: str, env: dict[str, str]) -> Iterator[tuple[int, list[int]]]:
    """``PROCESSES`` servers of ``app`` on one free port: (port, their pids)."""
    port = _free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    child_env.update(env)
    cmd = [sys.executable, "-m", "bench.respondent_servers", app, "--port", str(port)]
    with tempfile.TemporaryFile(mode="w+") as log:
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=log, stderr=log)
            for _ in range(PROCESSES)
        ]
        try:
            _wait_until_up(procs, port, log)
            yield port, [p.pid for p in procs]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)


def _wait_until_up(procs: list[subprocess.Popen[bytes]], port: int, log: Any) -> None:
    """Until every process has started (each says so on its log) and the port answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(base_url=f"http://{HOST}:{port}", trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                log.seek(0)
                raise RuntimeError(f"a server process exited:\n{log.read()}")
            log.seek(0)
            started = log.read().count("Application startup complete")
            try:
                client.get("/healthz")
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if started >= len(procs):
                return
            time.sleep(0.1)
    raise RuntimeError(f"servers on port {port} did not start within {STARTUP_SECONDS:.0f}s")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def machine_cpu_seconds() -> float:
    """CPU time spent by the whole machine so far (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


# --- the run -------------------------------------------------------------------------------


async def _interleaved(
    ports: dict[str, int], pids: dict[str, list[int]], people: dict[str, list[Respondent]],
    connections: int,
) -> dict[str, tuple[Timings, float, float]]:  # fmt: skip
    """Warm up, then alternate ``SLICE`` respondents at a time between the servers."""
    conns = {name: await open_all(HOST, port, connections) for name, port in ports.items()}
    out: dict[str, tuple[Timings, float, float]] = {}
    try:
        for name, conn in conns.items():
            await answer_all(conn, people[name][:WARMUP], Timings())
        timed = {name: Timings() for name in ports}
        server_cpu = dict.fromkeys(ports, 0.0)
        machine_cpu = dict.fromkeys(ports, 0.0)
        total = len(people["tilfreds"]) - WARMUP
        for first in range(WARMUP, WARMUP + total, SLICE):
            for name, conn in conns.items():
                chunk = people[name][first : first + SLICE]
                s0, m0 = cpu_seconds(pids[name]), machine_cpu_seconds()
                await answer_all(conn, chunk, timed[name])
                server_cpu[name] += cpu_seconds(pids[name]) - s0
                machine_cpu[name] += machine_cpu_seconds() - m0
        out = {name: (timed[name], server_cpu[name], machine_cpu[name]) for name in ports}
    finally:
        for conn_list in conns.values():
            await asyncio.gather(*(c.close() for c in conn_list))
    return out


def count_round_trips(port: int, people: list[Respondent]) -> tuple[dict[str, int], dict[str, int]]:
    """What one server process sent its database for the GETs, then for the POSTs, of
    ``people`` (one keep-alive connection, so one process)."""

    async def counted() -> tuple[dict[str, int], dict[str, int]]:
        conn = Connection(HOST, port)
        await conn.open()
        try:
            out = []
            for method in ("GET", "POST"):
                await _bench_call(conn, "POST", "/__bench/count")
                for who in people:
                    body = who.body if method == "POST" else b""
                    status, _ = await conn.request(method, f"/s/{who.code}", body)
                    if status != (200 if method == "GET" else 303):
                        raise RuntimeError(f"{method} /s/… answered {status} while counting")
                out.append(await _bench_call(conn, "GET", "/__bench/counts"))
            return out[0], out[1]
        finally:
            await conn.close()

    return asyncio.run(counted())


async def _bench_call(conn: Connection, method: str, path: str) -> dict[str, int]:
    status, body = await conn.request(method, path)
    if status != 200:
        raise RuntimeError(f"{method} {path} answered {status}")
    counts: dict[str, int] = json.loads(body)
    return counts


def run(*, pg_url: str, respondents: int, connections: int, workdir: Path) -> RespondentResult:
    timed = max(respondents, 1)
    db = fresh_database("postgresql", workdir=workdir, pg_url=pg_url, name="respondent")
    try:
        people = make_respondents(db, 2 * (WARMUP + timed) + COUNTED, workdir=workdir)
    finally:
        db.dispose()
    mine, bare = people[: WARMUP + timed], people[WARMUP + timed : 2 * (WARMUP + timed)]
    env = {
        "TILFREDS_DATABASE_URL": pg_url,
        "TILFREDS_SECRET_KEY": SECRET,
        "TILFREDS_PUBLIC_URL": PUBLIC_URL,
        "TILFREDS_DATA_DIR": str(workdir),
    }
    with processes("tilfreds", env) as (port, pids), processes("bare", {}) as (b_port, b_pids):
        print(f"respondent: {timed} respondents a server, {connections} connections each")
        sides = asyncio.run(
            _interleaved(
                {"tilfreds": port, "bare": b_port},
                {"tilfreds": pids, "bare": b_pids},
                {"tilfreds": mine, "bare": bare},
                connections,
            )
        )
        get_trips, post_trips = count_round_trips(port, people[-COUNTED:])
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = {
        name: Side(name, timed, t.seconds, tuple(t.get_ms), tuple(t.post_ms), s, d, t.client_cpu)
        for name, (t, s, d) in sides.items()
    }
    return RespondentResult(
        result["tilfreds"], result["bare"], connections, get_trips, post_trips, " ".join(load)
    )
