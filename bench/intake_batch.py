"""Intake at scale on PostgreSQL: N interactions (1M by default) through ``POST
/api/v1/interactions/batch`` in requests of 10,000 to the real app under uvicorn, into scheduled
invitations (eligibility included), against a raw ``COPY`` of the same rows into the same four
tables (people, interactions, invitations, messages) in the same run (the limit); then the same
rows as a CSV file through ``tilfreds import interactions``. Reports rows/second and the peak
RSS of the server and of the import process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import make_url, text

from bench import peaks
from bench.common import (
    OCCURRED_AT,
    PUBLIC_URL,
    ROOT,
    SECRET,
    fresh_database,
    interaction_payload,
    progress,
)
from bench.intake import _free_port, _wait_until_up
from bench.peaks import run_watched
from bench.servers import HOST
from tilfreds.db import Database
from tilfreds.operators.service import create_token

TABLES = ("messages", "invitations", "interactions", "people")


@dataclass(frozen=True)
class BatchIntakeResult:
    rows: int
    batch: int
    copy_seconds: float
    api_seconds: float
    api_peak_kib: int | None
    csv_seconds: float
    csv_peak_kib: int | None

    @property
    def copy_rate(self) -> float:
        return self.rows / self.copy_seconds

    @property
    def api_rate(self) -> float:
        return self.rows / self.api_seconds

    @property
    def csv_rate(self) -> float:
        return self.rows / self.csv_seconds


def run(*, pg_url: str, rows: int, batch: int, workdir: Path) -> BatchIntakeResult:
    db = fresh_database("postgresql", workdir=workdir, pg_url=pg_url, name="intake_batch")
    try:
        with db.unit_of_work() as session:
            token = create_token(session, name="bench", role="admin", now=datetime.now(UTC))
        copy_seconds = raw_copy(pg_url, rows)
        _empty(db)
        api_seconds, api_peak = through_api(db.url, token, rows=rows, batch=batch, workdir=workdir)
        _check_scheduled(db, rows)
        _empty(db)
        csv_seconds, csv_peak = through_csv(db.url, rows=rows, batch=batch, workdir=workdir)
        _check_scheduled(db, rows)
    finally:
        db.dispose()
    return BatchIntakeResult(rows, batch, copy_seconds, api_seconds, api_peak, csv_seconds,
                             csv_peak)  # fmt: skip


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def raw_copy(pg_url: str, rows: int) -> float:
    """The limit: the same number of rows, with values of the same shapes (a blind index, two
    ciphertexts, a code), ``COPY``-ed into the four tables in one transaction."""
    now = datetime.now(UTC)
    expires, occurred = now + timedelta(days=7), OCCURRED_AT
    with psycopg.connect(_psycopg_url(pg_url)) as conn, progress() as bar:
        task = bar.add_task("raw COPY (limit)", total=4 * rows)
        start = time.perf_counter()
        with conn.cursor() as cur:
            for table, columns, make in (
                ("people", "id, phone_index, phone_cipher, name_cipher, locale, created_at",
                 lambda n: (n, f"abcdef01.{os.urandom(32).hex()}", os.urandom(44),
                            os.urandom(42), "nb", now)),
                ("interactions",
                 "id, external_id, person_id, channel, reason, case_ref, occurred_at, created_at",
                 lambda n: (n, f"copy-{n}", n, "phone", "payment plan", f"C-{n}", occurred, now)),
                ("invitations",
                 "id, interaction_id, person_id, survey_id, code, status, created_at, expires_at",
                 lambda n: (n, n, n, 1, os.urandom(8).hex()[:11], "pending", now, expires)),
                ("messages",
                 "id, purpose, status, person_id, invitation_id, send_after, attempts, created_at",
                 lambda n: (n, "invitation", "queued", n, n, now, 0, now)),
            ):  # fmt: skip
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for n in range(1, rows + 1):
                        copy.write_row(make(n))
                        if n % 10_000 == 0:
                            bar.advance(task, 10_000)
        conn.commit()
        return time.perf_counter() - start


def _empty(db: Database) -> None:
    with db.unit_of_work() as session:
        session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


def _check_scheduled(db: Database, rows: int) -> None:
    with db.read_only() as session:
        found = session.execute(
            text("SELECT (SELECT count(*) FROM invitations), (SELECT count(*) FROM messages)")
        ).one()
    if tuple(found) != (rows, rows):
        raise RuntimeError(f"{tuple(found)} invitations and messages, expected {rows} each")


def _env(url: str, workdir: Path) -> dict[str, str]:
    """As a production server is set up: the dev transport only so nothing can be sent (a web
    process on PostgreSQL runs no send worker anyway), send windows on as with a real one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    return env | {
        "TILFREDS_DATABASE_URL": url,
        "TILFREDS_SECRET_KEY": SECRET,
        "TILFREDS_PUBLIC_URL": PUBLIC_URL,
        "TILFREDS_DATA_DIR": str(workdir),
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
        "TILFREDS_SEND_WINDOWS": "true",
    }


CSV_TIMEOUT_SECONDS = 3600.0  # a stuck import is killed, not waited for forever
WEB_PROCESSES = 2  # ``tilfreds serve --workers 2``: one per core, as docs/operating.md says


@contextmanager
def _production_server(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tilfreds serve --workers 2`` in a subprocess, as the product is run on PostgreSQL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "tilfreds", "serve", "--port", str(port),
           "--workers", str(WEB_PROCESSES)]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            _wait_until_up(proc, f"http://{HOST}:{port}", log)
            yield f"http://{HOST}:{port}", proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _peak_kib_of_tree(pid: int) -> int:
    """The peak RSS of the server: its own and its web processes', added."""
    return sum(peaks.peak_kib(p) or 0 for p in peaks.tree(pid))


def _bodies(rows: int, batch: int) -> Iterator[bytes]:
    for start in range(0, rows, batch):
        chunk = [interaction_payload(n) for n in range(start, min(start + batch, rows))]
        yield json.dumps({"interactions": chunk}).encode()


CLIENTS = 2  # connections posting batches side by side, as a case system's exporter might


def through_api(url: str, token: str, *, rows: int, batch: int, workdir: Path) -> tuple[float, int]:
    """Requests of ``batch`` rows from ``CLIENTS`` keep-alive connections side by side (each
    request is checked in Python while another waits for the database); wall time and the
    server's peak RSS (KiB)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies, lock = _bodies(rows, batch), threading.Lock()

    def post_all(base: str, advance: Callable[[int], object]) -> None:
        with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=600.0) as c:
            while True:
                with lock:
                    body = next(bodies, None)
                if body is None:
                    return
                response = c.post("/api/v1/interactions/batch", content=body)
                if response.status_code != 200 or response.json()["refused"]:
                    raise RuntimeError(f"batch: {response.status_code}: {response.text[:300]}")
                advance(response.json()["created"])

    with _production_server(_env(url, workdir)) as (base, proc), progress() as bar:
        task = bar.add_task(f"POST /api/v1/interactions/batch ×{batch}", total=rows)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            for future in [
                pool.submit(post_all, base, partial(bar.advance, task)) for _ in range(CLIENTS)
            ]:
                future.result()
        seconds = time.perf_counter() - start
        peak = _peak_kib_of_tree(proc.pid)
    return seconds, peak


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "name", "phone", "locale", "channel", "reason",
                      "occurred_at", "case_ref", "flags"])  # fmt: skip
        for n in range(rows):
            p: dict[str, Any] = interaction_payload(n)
            c = p["customer"]
            out.writerow([p["external_id"], c["name"], c["phone"], c["locale"], p["channel"],
                          p["reason"], p["occurred_at"], p["case_ref"], ""])  # fmt: skip


def through_csv(url: str, *, rows: int, batch: int, workdir: Path) -> tuple[float, int]:
    """``tilfreds import interactions`` of the same rows as a CSV file; wall time and the
    import process's peak RSS (KiB)."""
    path = workdir / "interactions.csv"
    write_csv(path, rows)
    env = _env(url, workdir)
    cmd = [sys.executable, "-m", "tilfreds", "import", "interactions", str(path),
           "--chunk", str(batch), "--processes", str(WEB_PROCESSES)]  # fmt: skip
    print(f"CSV import of {rows} rows ...", flush=True)
    with tempfile.TemporaryFile() as log:
        run = run_watched(cmd, env=env, output=log, timeout=CSV_TIMEOUT_SECONDS, cwd=ROOT)
        if run.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"tilfreds import failed:\n{log.read()[-2000:].decode()}")
    path.unlink()
    return run.seconds, run.peak_kib


TARGET = 0.35  # batch intake's rows/s over the raw COPY's, at least


def target_row(r: BatchIntakeResult) -> list[str]:
    ratio = r.api_rate / r.copy_rate
    csv_ratio = r.csv_rate / r.copy_rate
    ok = min(ratio, csv_ratio) >= TARGET
    return [
        f"8. Batch intake of {r.rows:,} interactions, PostgreSQL: rows/s over a raw `COPY` of "
        "the same rows (API in requests of "
        f"{r.batch:,}; CSV import)",
        f"API {ratio:.2f}× ({r.api_rate:,.0f}/s, server peak {r.api_peak_kib / 1024:.0f} MiB); "
        f"CSV {csv_ratio:.2f}× ({r.csv_rate:,.0f}/s, peak {r.csv_peak_kib / 1024:.0f} MiB)",
        f"≥ {TARGET}×",
        "**pass**" if ok else "**miss**",
    ]


def section(r: BatchIntakeResult | None) -> list[str]:
    out = ["## 8. Batch intake (PostgreSQL)", ""]
    if r is None:
        return [*out, "Not run.", ""]
    return [
        *out,
        f"{r.rows:,} distinct interactions (new people, recent, no flags: each becomes a "
        "scheduled invitation, eligibility included), three ways into the same empty tables of "
        "one database, one after another:",
        "",
        f"- **limit**: a raw `COPY` (psycopg, one transaction) of {r.rows:,} rows each into "
        "people, interactions, invitations and messages, with values of the same shapes;",
        f"- **API**: `POST /api/v1/interactions/batch` with {r.batch:,} rows a request, from "
        f"{CLIENTS} `httpx` clients side by side on keep-alive connections, to `tilfreds serve "
        f"--workers {WEB_PROCESSES}` in a subprocess, as on a production server (its peak RSS: "
        "the `/proc/<pid>/status` VmHWM of the parent and its web processes, added);",
        f"- **CSV**: `python -m tilfreds import interactions FILE --chunk {r.batch} --processes "
        f"{WEB_PROCESSES}` of the same "
        "rows written to a file (process start and schema check included; peak RSS from "
        "`/proc`: the largest VmHWM among its processes).",
        "",
        "| Way | seconds | rows/s | over the limit | peak RSS |",
        "|---|---|---|---|---|",
        f"| raw COPY (limit) | {r.copy_seconds:.1f} | {r.copy_rate:,.0f} | 1 | — |",
        f"| API batches | {r.api_seconds:.1f} | {r.api_rate:,.0f} | "
        f"**{r.api_rate / r.copy_rate:.2f}×** | {r.api_peak_kib / 1024:.0f} MiB |",
        f"| CSV import | {r.csv_seconds:.1f} | {r.csv_rate:,.0f} | "
        f"**{r.csv_rate / r.copy_rate:.2f}×** | {r.csv_peak_kib / 1024:.0f} MiB |",
        "",
        *_WHERE_THE_TIME_GOES,
    ]


_WHERE_THE_TIME_GOES = [
    "Where the time goes (py-spy of `tilfreds serve --workers 2` taking 10,000-row batches, "
    "and `EXPLAIN ANALYZE` of the insert): a web process's busy time is almost all the batch's "
    "own Python work (JSON and the answer are about 2%): `phonenumbers` (parse and number "
    "type) about a third, sealing name and number (AES-GCM) a tenth, pydantic with the field "
    "checks, eligibility and the send window, and building the statements' parameters the "
    "rest; the database's part is one read of the facts, one insert of the new people and one "
    "statement inserting interactions, invitations and messages, where the foreign-key "
    "triggers take about half the statement's time (as they do for the raw COPY). Changed for "
    "speed, each measured as the CPU time of a web process's intake per row (40,000 rows "
    "in-process, so the machine's load matters less): each phone number parsed once, its "
    "check also giving the send window's zone and country (155 to 103 µs a row); the "
    "collector tuned once a process is loaded (`gc.freeze()`, thresholds 50,000/20/20: it "
    "ran over a batch's young objects again and again, 103 to 80 µs); a batch's invitation "
    "codes from one read of the random source and one AES-GCM sealer per key (80 to 72 µs); "
    "two web processes (`serve --workers 2`), each batch's answer closing its connection so "
    "the next batch goes to the free process (with keep-alive both clients' connections could "
    "land on one process: py-spy showed one process at 77% and the other idle); the CSV "
    "import checks and writes its chunks in 2 processes (`--processes 2`; only checking them "
    "there, with the writes in the reading process, was slower than one process: 0.29×). "
    "Earlier: "
    "rows as one text parameter per column split by `string_to_array`; one `number_type` "
    "match per number; ASCII fast paths in the field checks; `SET LOCAL jit = off` for a "
    "batch of 100 rows or more.",
    "",
]
