"""Turns the measured figures into ``docs/benchmarks.md`` (overwritten each run) and a console
summary. Measures nothing itself; every table sets tilfreds beside its limit from the same run."""

from __future__ import annotations

from collections.abc import Sequence

from bench.intake import WARMUP, IntakeResult
from bench.send_worker import WorkerResult

NAMES = {"sqlite": "SQLite (temp file)", "postgresql": "PostgreSQL", "-": "—"}


def _kib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} MiB"


def _runs(seconds: Sequence[float]) -> str:
    return ", ".join(f"{x:.3f} s" for x in seconds)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render(
    *,
    command: str,
    facts: dict[str, str],
    worker: Sequence[WorkerResult],
    intake: Sequence[IntakeResult],
    skipped: Sequence[str],
) -> str:
    out = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {facts['Date']}; each run overwrites this file. Every figure "
        "is set beside the limit it is compared with, measured in the same run on the same "
        "machine, so the ratios matter more than the absolute numbers.",
        "",
        "## Machine",
        "",
        *_table(["", ""], [[k, v] for k, v in facts.items()]),
        "",
    ]
    if skipped:
        out += [f"Skipped: {'; '.join(skipped)}.", ""]

    out += ["## 1. Send worker throughput", ""]
    if worker:
        w0 = worker[0]
        out += [
            f"{w0.messages} due messages, created through `receive_interaction`, drained by "
            f"`Worker(rt).drain()` in batches of {w0.batch_size} with a null transport (it "
            "takes each SMS at once), so the time is the database and queue work: claim with a "
            "lease, prepare (join, suppression check, decrypt, render), record each outcome. "
            "The limit is a raw SQL loop on the same table, the same rows and batch size, one "
            "transaction per batch: `SELECT id … WHERE status='queued' AND send_after<=:now "
            "ORDER BY send_after LIMIT :n` (`FOR UPDATE SKIP LOCKED` on PostgreSQL), then "
            "`UPDATE messages SET status='sent' WHERE id IN (…)`.",
            "",
            f"Each figure is the median of {w0.repeat} timed runs, tilfreds and the limit "
            "alternating on the same rows (reset to queued, and on PostgreSQL vacuumed, before "
            "each); all runs are listed below the table. Statements per message are counted "
            "for one whole drain, BEGIN not counted.",
            "",
            *_table(
                [
                    "Database",
                    "tilfreds worker",
                    "raw claim+mark (limit)",
                    "tilfreds / limit",
                    "SQL statements per message (tilfreds / limit)",
                ],
                [
                    [
                        NAMES[r.database],
                        f"{r.tilfreds_rate:,.0f} msg/s ({r.tilfreds_seconds:.3f} s)",
                        f"{r.baseline_rate:,.0f} msg/s ({r.baseline_seconds:.3f} s)",
                        f"{r.ratio:.3f}× ({1 / r.ratio:.0f}× slower)",
                        f"{r.tilfreds_statements / r.messages:.2f} / "
                        f"{r.baseline_statements / r.messages:.3f}",
                    ]
                    for r in worker
                ],
            ),
            "",
            *[
                f"- {NAMES[r.database]}: tilfreds runs {_runs(r.tilfreds_runs)}; "
                f"limit runs {_runs(r.baseline_runs)}."
                for r in worker
            ],
            "",
        ]
    else:
        out += ["Not run.", ""]

    out += ["## 2. Intake over HTTP", ""]
    echoes = [r for r in intake if r.server == "echo"]
    limit = sum(r.rate for r in echoes) / len(echoes) if echoes else None
    if intake:
        n = intake[0].requests
        out += [
            f"{n} distinct interactions POSTed one after another (after {WARMUP} unmeasured "
            "warm-up requests) by one `httpx.Client` on a keep-alive loopback connection to "
            "`/api/v1/interactions` of the real app (`create_app(rt)`, bearer token, no "
            "in-process worker) under uvicorn in a subprocess. The limit is a bare FastAPI app "
            "with one plain-`def` `POST /echo` route taking the same JSON body as a dict and "
            "answering `{}`, under the same uvicorn setup, hit the same way with the same bodies; "
            "it runs before and after tilfreds (the spread shows the machine's drift) and "
            "*req/s vs limit* divides by the mean of its runs.",
            "",
            *_table(
                ["Server", "Database", "req/s", "p50 ms", "p95 ms", "req/s vs limit"],
                [
                    [
                        "tilfreds `POST /api/v1/interactions`"
                        if r.server == "tilfreds"
                        else f"bare FastAPI `POST /echo` (limit, run {echoes.index(r) + 1})",
                        NAMES[r.database],
                        f"{r.rate:,.0f}",
                        f"{r.p50:.2f}",
                        f"{r.p95:.2f}",
                        f"{r.rate / limit:.2f}×" if limit else "n/a",
                    ]
                    for r in intake
                ],
            ),
            "",
        ]
    else:
        out += ["Not run.", ""]

    out += ["## 3. Memory of the send worker", ""]
    if worker:
        out += [
            "Figures only, no limit asserted. *Peak RSS during drain* is the process's "
            "VmHWM, reset (`/proc/self/clear_refs`) just before each timed drain, the largest "
            "of them (where /proc is missing: `getrusage` max RSS of the whole process). "
            "*tracemalloc peak* is the largest amount of Python memory allocated during one "
            "separate drain of all the messages and alive at the same time (that drain runs "
            "first, under tracemalloc, and also warms caches for the timed ones).",
            "",
            *_table(
                [
                    "Database",
                    "RSS before drain",
                    "peak RSS during drain",
                    "growth",
                    f"tracemalloc peak ({worker[0].messages} msgs)",
                ],
                [
                    [
                        NAMES[r.database],
                        _kib(r.rss_before_kib),
                        f"{_kib(r.rss_peak_kib)} ({r.rss_peak_source})",
                        _kib(r.rss_peak_kib - r.rss_before_kib) if r.rss_before_kib else "n/a",
                        f"{r.tracemalloc_peak_bytes / 1024**2:.1f} MiB",
                    ]
                    for r in worker
                ],
            ),
            "",
        ]
    else:
        out += ["Not run.", ""]
    return "\n".join(out)
