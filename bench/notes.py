"""The fixed part of ``docs/benchmarks.md``: where the time goes (from profiles) and each change
made for speed with its figure before and after (A/B runs of this benchmark at both commits)."""

from __future__ import annotations

from bench.common import md_table as _table


def notes() -> list[str]:
    return [
        "## Where the time goes",
        "",
        "- Intake: the bearer-token check is one statement on an autocommit connection (no "
        "BEGIN or ROLLBACK of its own), then the intake's transaction: on PostgreSQL one read, "
        "the person's insert when new, and one statement inserting interaction, invitation and "
        "message; the audit chain adds a locked read of its head and one statement inserting "
        "the entries and moving the head, then COMMIT: 8 round trips (libpq's trace). Measured "
        "by the server's own CPU time (less sensitive to the machine's load than rates), "
        "tilfreds spends about 5.4 ms of CPU a request and PostgreSQL about 5 ms, against "
        "1.0 ms for the bare endpoint; PostgreSQL's own log put 4.8 ms of each request's wall "
        "time in the COMMIT (the WAL flush) while other test runs shared the disk.",
        "- Send worker: a batch is two transactions (take, prepare and lease the batch with "
        "the first window in flight; then the first window's outcomes and the second window in "
        "flight), the last window's outcomes riding with the next batch's take. Each message "
        "is written three times (claimed, sending, submitted; twice in the first window) and "
        "its invitation once, where the limit writes each message once: those writes, not "
        "Python, are most of the gap.",
        "",
        "## What was changed for speed",
        "",
        "Each change was measured by running this benchmark's worker or intake part at the "
        "commits before and after it, alternately, three times (PostgreSQL ratios, medians; "
        "the machine's load changed between sessions, so compare within a row).",
        "",
        *_table(
            ["Change", "Before", "After"],
            [
                [
                    "Worker: claim, prepare and mark the first window in flight in one "
                    "transaction (4 commits a batch to 3)",
                    "0.108×",
                    "0.107×",
                ],
                [
                    "Worker: a full batch's last outcomes recorded with the next claim (3 commits "
                    "to 2); Core statements, not ORM; on PostgreSQL ids bound as one array and "
                    "provider ids joined from arrays instead of an executemany",
                    "0.107×",
                    "0.161×",
                ],
                [
                    "Worker statements built once with bound parameters (no per-pass statement "
                    "building, compiling and cache keys)",
                    "0.173×",
                    "0.198×",
                ],
                [
                    "Worker: take and prepare with one locking joined read, lease with one update "
                    "(the first window written once)",
                    "0.177×",
                    "0.205×",
                ],
                [
                    "Worker: invitations marked sent found by primary key (`ANY(ARRAY(…))`), "
                    "not by a hash join over a scan of invitations",
                    "0.205×",
                    "0.246×",
                ],
                [
                    "Intake: statements built once (Core, bound parameters); pool pings only for "
                    "a connection idle 10 s or whose socket shows the server spoke (2 round "
                    "trips a request fewer); on PostgreSQL interaction, invitation and message "
                    "in one statement (2 fewer)",
                    "0.101× (p50 12.5 ms, 14 round trips)",
                    "0.117× (p50 10.4 ms, 10 round trips)",
                ],
                [
                    "Intake: the token check in autocommit (one round trip, not three); the audit "
                    "entries inserted by a CTE of the head's update; the audit statements built "
                    "once as text (SQLAlchemy compiled the multi-row insert, and the update "
                    "holding it, at every request); security headers as pure ASGI middleware",
                    "10 round trips; server CPU 7.2 ms a request",
                    "8 round trips; server CPU 5.4 ms a request",
                ],
                [
                    "Claim: `id = ANY(ARRAY(SELECT … SKIP LOCKED))` instead of `id IN (SELECT …)`, "
                    "which the planner hash-joined against a scan of the whole queue at 20,000 "
                    "queued (a nested loop at 1,000,000)",
                    "20,000 queued: 3.8 ms vs 2.3 ms",
                    "index and primary key at every size",
                ],
            ],
        ),
        "",
    ]
