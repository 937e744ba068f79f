"""Turns the measured figures into ``docs/benchmarks.md`` (overwritten each run): first each target
of issue 5 with its figure, its limit and pass or miss, then the details. Measures nothing; every
ratio sets tilfreds beside its limit measured in the same run on the same machine."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import intake_batch
from bench.audit_verify import VerifyResult
from bench.claim import INDEX, ClaimResult
from bench.common import md_table as _table
from bench.intake import COUNTED, SLICE, WARMUP, IntakeResult, ratios
from bench.intake_batch import BatchIntakeResult
from bench.notes import notes
from bench.send_worker import WorkerResult
from bench.sms_dispatch import DispatchResult
from bench.sms_dispatch import section as _sms
from bench.sms_dispatch import target_rows as _sms_targets

NAMES = {"sqlite": "SQLite (temp file)", "postgresql": "PostgreSQL", "-": "—"}
INTAKE_TARGET = 0.2  # tilfreds req/s over the bare endpoint's, PostgreSQL
WORKER_TARGET = 0.2  # tilfreds msg/s over the raw claim+mark loop's, PostgreSQL
CLAIM_TARGET = 3.0  # claim latency with the backlog over that with the small queue, at most
AUDIT_TARGET_MIB = 200.0  # peak RSS of `tilfreds audit verify`, below


@dataclass
class Results:
    worker: list[WorkerResult] = field(default_factory=list)
    intake: list[IntakeResult] = field(default_factory=list)
    claim: ClaimResult | None = None
    audit: VerifyResult | None = None
    sms: DispatchResult | None = None
    batch: BatchIntakeResult | None = None
    skipped: list[str] = field(default_factory=list)


def _mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def _runs(seconds: Sequence[float]) -> str:
    return ", ".join(f"{x:.3f}" for x in seconds)


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**miss**"


def _worker_on(results: Results, kind: str) -> WorkerResult | None:
    return next((w for w in results.worker if w.database == kind), None)


def targets(results: Results) -> list[list[str]]:
    """One row per target: what, figure, target, verdict."""
    rows: list[list[str]] = []
    pg_intake = ratios(results.intake, "postgresql")
    if pg_intake:
        median = statistics.median(pg_intake)
        counted = next(r for r in results.intake if r.database == "postgresql")
        rows.append(
            [
                "1. Intake, one client, PostgreSQL: `POST /api/v1/interactions` req/s over the "
                "bare FastAPI endpoint's",
                f"{median:.3f}× (median of {len(pg_intake)}); "
                f"{counted.per_request('round_trips'):.1f} round trips a request",
                f"≥ {INTAKE_TARGET}×",
                _verdict(median >= INTAKE_TARGET),
            ]
        )
    pg_worker = _worker_on(results, "postgresql")
    if pg_worker:
        w = pg_worker
        rows.append(
            [
                f"2. Send worker, null transport, batch {w.batch_size}, PostgreSQL: msg/s over "
                "the raw claim+mark loop's",
                f"{w.ratio:.3f}× (median of {w.repeat}); "
                f"{w.per_message(w.tilfreds_counts, 'statements'):.3f} statements a message",
                f"≥ {WORKER_TARGET}×",
                _verdict(w.ratio >= WORKER_TARGET),
            ]
        )
    if results.claim:
        c = results.claim
        rows.append(
            [
                f"3. Claim of {c.batch_size} with {c.large:,} due messages queued, over the same "
                f"with {c.small:,}: median latency",
                f"{c.ratio:.2f}× ({c.large_median:.2f} ms vs {c.small_median:.2f} ms); "
                f"`{INDEX}` {'used, no scan' if c.uses_index else 'NOT used, or a scan'}",
                f"≤ {CLAIM_TARGET:g}×, index used",
                _verdict(c.ratio <= CLAIM_TARGET and c.uses_index),
            ]
        )
    if results.audit:
        a = results.audit
        mib = a.peak_rss_kib / 1024
        rows.append(
            [
                f"4. `tilfreds audit verify` of {a.entries:,} entries: peak RSS",
                f"{mib:.0f} MiB in {a.seconds:.1f} s"
                + ("" if a.ok else f" (FAILED: exit {a.exit_code})"),
                f"< {AUDIT_TARGET_MIB:g} MiB",
                _verdict(a.ok and mib < AUDIT_TARGET_MIB),
            ]
        )
    if results.batch:
        rows.append(intake_batch.target_row(results.batch))
    for w in results.worker:
        rows.append(
            [
                f"5. Worker memory, {NAMES[w.database]}: peak RSS while draining "
                f"{w.messages:,} messages",
                f"{_mib(w.rss_peak_kib)} (tracemalloc peak "
                f"{w.tracemalloc_peak_bytes / 1024**2:.1f} MiB)",
                "figure only",
                "—",
            ]
        )
    return rows + _sms_targets(results.sms)


def render(
    *,
    command: str,
    facts: dict[str, str],
    results: Results,
    more_targets: Sequence[list[str]] = (),
    more_sections: Sequence[str] = (),
) -> str:
    """The report: ``more_targets`` and ``more_sections`` are the respondent benchmark's."""
    out = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {facts['Date']}; each run overwrites this file. Every ratio "
        "sets tilfreds beside its limit, measured in the same run on the same machine (a shared, "
        "noisy one: the ratios matter, not the absolute numbers). `make bench` runs it all. How "
        "the figures moved, each change made for them and what was tried and dropped, with "
        "commits, times and the machine's load: [benchmarks-history.md](benchmarks-history.md).",
        "",
        "## Targets (issues 5 to 8)",
        "",
        *_table(["Target", "Figure", "Target", ""], [*targets(results), *more_targets]),
        "",
    ]
    if results.skipped:
        out += [f"Skipped: {'; '.join(results.skipped)}.", ""]
    out += ["## Machine", "", *_table(["", ""], [[k, v] for k, v in facts.items()]), ""]
    out += _intake(results.intake) + _worker(results.worker) + _claim(results.claim)
    out += _audit(results.audit) + _memory(results.worker) + _sms(results.sms)
    out += intake_batch.section(results.batch) + notes() + list(more_sections)
    return "\n".join(out)


def _intake(intake: Sequence[IntakeResult]) -> list[str]:
    out = ["## 1. Intake over HTTP", ""]
    if not intake:
        return [*out, "Not run.", ""]
    n = intake[0].requests
    kinds = [k for k in ("sqlite", "postgresql") if any(r.database == k for r in intake)]
    out += [
        f"{n} distinct interactions POSTed one after another (after {WARMUP} unmeasured "
        "warm-up requests) by one `httpx.Client` on a keep-alive loopback connection to "
        "`/api/v1/interactions` of the real app (`create_app(rt)`, bearer token, no in-process "
        "worker) under uvicorn in a subprocess. The limit is a bare FastAPI app with one "
        "plain-`def` `POST /echo` route taking the same JSON body as a dict and answering `{}`, "
        "under the same uvicorn setup, running at the same time and hit with the same bodies by "
        f"a client of its own: the two take turns, {SLICE} requests each, so both meet the same "
        "load from the rest of the machine; a round's ratio is tilfreds's rate over the limit's.",
        "",
        *_table(
            ["Database", "ratio per round", "median", "round trips / request"],
            [
                [
                    NAMES[k],
                    ", ".join(f"{x:.3f}" for x in ratios(list(intake), k)),
                    f"**{statistics.median(ratios(list(intake), k)):.3f}×**",
                    _trips(next(r for r in intake if r.database == k)),
                ]
                for k in kinds
            ],
        ),
        "",
        f"Round trips are counted inside the server on {COUNTED} further requests; they "
        "include the bearer-token check and the audit entries. On PostgreSQL from libpq's "
        "trace of each connection: a round trip is one wait for the server (one ReadyForQuery: "
        "a statement sent alone, or statements sent together in a pipeline up to its sync), a "
        "statement each one executed, and BEGIN and COMMIT are named where they went on their "
        "own; on SQLite from SQLAlchemy's events (each statement, COMMIT and ROLLBACK).",
        "",
        *_table(
            ["Round", "Server", "Database", "req/s", "p50 ms", "p95 ms"],
            [
                [
                    str(r.round),
                    "tilfreds" if r.server == "tilfreds" else "bare FastAPI (limit)",
                    NAMES[r.database] if r.server == "tilfreds" else f"— ({r.paired_with})",
                    f"{r.rate:,.0f}",
                    f"{r.p50:.2f}",
                    f"{r.p95:.2f}",
                ]
                for r in intake
            ],
        ),
        "",
    ]
    return out


def _trips(r: IntakeResult) -> str:
    c = r.counts or {}
    parts = ", ".join(
        f"{c.get(k, 0) / r.counted:.1f} {k}"
        for k in ("statements", "begin", "commit", "rollback")
        if c.get(k)
    )
    return f"{r.per_request('round_trips'):.1f} ({parts})"


def _worker(worker: Sequence[WorkerResult]) -> list[str]:
    out = ["## 2. Send worker throughput", ""]
    if not worker:
        return [*out, "Not run.", ""]
    w0 = worker[0]
    out += [
        f"{w0.messages} due messages, created through `receive_interaction`, drained by "
        f"`Worker(rt).drain()` in batches of {w0.batch_size} with a null transport (it takes "
        "each SMS at once), so the time is the database and queue work: claim with a lease, "
        "prepare (join, suppression check, decrypt, render), mark each window in flight, "
        "record each outcome. The limit is a raw SQL loop on the same table, rows and batch "
        "size, one transaction per batch: `SELECT id … WHERE status='queued' AND "
        "send_after<=:now ORDER BY send_after, id LIMIT :n` (`FOR UPDATE SKIP LOCKED` on "
        "PostgreSQL), then `UPDATE messages SET status='submitted' WHERE id IN (…)`.",
        "",
        f"{w0.repeat} timed runs each, tilfreds and the limit alternating on the same rows (reset "
        "to queued, and on PostgreSQL vacuumed, before each); the ratio is the median of the "
        "pairs' ratios. Statements and round trips are counted over one whole drain of each, "
        "as for the intake (section 1).",
        "",
        *_table(
            [
                "Database",
                "tilfreds msg/s (median)",
                "limit msg/s (median)",
                "ratio per pair",
                "ratio (median)",
                "statements / message (tilfreds, limit)",
                "round trips / message (tilfreds, limit)",
            ],
            [
                [
                    NAMES[w.database],
                    f"{w.tilfreds_rate:,.0f}",
                    f"{w.baseline_rate:,.0f}",
                    ", ".join(f"{x:.3f}" for x in w.pair_ratios),
                    f"**{w.ratio:.3f}×**",
                    f"{w.per_message(w.tilfreds_counts, 'statements'):.3f}, "
                    f"{w.per_message(w.baseline_counts, 'statements'):.3f}",
                    f"{w.per_message(w.tilfreds_counts, 'round_trips'):.3f}, "
                    f"{w.per_message(w.baseline_counts, 'round_trips'):.3f}",
                ]
                for w in worker
            ],
        ),
        "",
        *[
            f"- {NAMES[w.database]}: tilfreds runs {_runs(w.tilfreds_runs)} s; limit runs "
            f"{_runs(w.baseline_runs)} s; tilfreds sent "
            + ", ".join(
                f"{v} {k.split(':')[1]}"
                for k, v in sorted(w.tilfreds_counts.items())
                if k.startswith("statement:")
            )
            + f", {w.tilfreds_counts.get('commit', 0)} COMMIT."
            for w in worker
        ],
        "",
    ]
    return out


def _claim(c: ClaimResult | None) -> list[str]:
    out = ["## 3. Claim with a long queue (PostgreSQL)", ""]
    if c is None:
        return [*out, "Not run (it needs PostgreSQL).", ""]
    out += [
        f"A claim of {c.batch_size} messages as the worker makes it: `outbox.take` (one "
        "`SELECT` of the oldest due messages joined with what sending them needs, `FOR UPDATE "
        "OF messages SKIP LOCKED`; decrypt, render) and `jobs.lease` (one `UPDATE` by primary "
        "key, the first window straight to in flight), timed alone in its transaction and "
        f"rolled back, {c.claims} times on a queue of {c.small:,} due messages, then again after "
        f"due messages were added up to {c.large:,} (one `INSERT … SELECT generate_series`, "
        f"{c.fill_seconds:.1f} s, then `VACUUM ANALYZE`).",
        "",
        *_table(
            ["Queue", "median ms", "p90 ms", "min ms", "max ms"],
            [
                [
                    f"{n:,}",
                    f"{statistics.median(ms):.2f}",
                    f"{statistics.quantiles(ms, n=10)[8]:.2f}" if len(ms) > 1 else "—",
                    f"{min(ms):.2f}",
                    f"{max(ms):.2f}",
                ]
                for n, ms in ((c.small, c.small_ms), (c.large, c.large_ms))
            ],
        ),
        "",
        "The plans on the large queue (`EXPLAIN (ANALYZE, COSTS OFF)`): "
        + (
            f"the due messages come from `{INDEX}`, the rows by primary key, no scan of the queue."
            if c.uses_index
            else f"MISS: `{INDEX}` unused or the queue scanned."
        ),
        "",
        "```",
        c.plan,
        "```",
        "",
    ]
    return out


def _audit(a: VerifyResult | None) -> list[str]:
    out = ["## 4. `tilfreds audit verify` of a long log (PostgreSQL)", ""]
    if a is None:
        return [*out, "Not run (it needs PostgreSQL).", ""]
    out += [
        f"A valid chain of {a.entries:,} entries written straight into `audit_log` "
        f"({a.method}; {a.fill_seconds:.1f} s), then `python -m tilfreds audit verify` run in a "
        "child process; peak RSS is that process's own `VmHWM`, read from `/proc` while it "
        "runs (`wait4` would report at least the benchmark process's RSS when it forked).",
        "",
        *_table(
            ["Entries", "exit code", "seconds", "peak RSS", "its output (last lines)"],
            [
                [
                    f"{a.entries:,}",
                    str(a.exit_code),
                    f"{a.seconds:.1f}",
                    _mib(a.peak_rss_kib),
                    a.output.replace("|", "\\|")[:200],
                ]
            ],
        ),
        "",
    ]
    return out


def _memory(worker: Sequence[WorkerResult]) -> list[str]:
    out = ["## 5. Memory of the send worker", ""]
    if not worker:
        return [*out, "Not run.", ""]
    out += [
        "Figures only. *Peak RSS during drain* is the process's VmHWM, reset "
        "(`/proc/self/clear_refs`) just before each timed drain, the largest of them (without "
        "/proc: `getrusage` max RSS of the whole process). *tracemalloc peak* is the most Python "
        "memory alive at once during one separate drain of all the messages.",
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
                    NAMES[w.database],
                    _mib(w.rss_before_kib),
                    f"{_mib(w.rss_peak_kib)} ({w.rss_peak_source})",
                    _mib(w.rss_peak_kib - w.rss_before_kib) if w.rss_before_kib else "n/a",
                    f"{w.tracemalloc_peak_bytes / 1024**2:.1f} MiB",
                ]
                for w in worker
            ],
        ),
        "",
    ]
    return out
