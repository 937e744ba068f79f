"""The fixed part of ``docs/benchmarks.md``: where the time goes (from profiles) and each change
made for speed with its figure before and after (A/B runs of this benchmark at both commits)."""

from __future__ import annotations

from bench.common import md_table as _table


def notes() -> list[str]:
    return [
        "## Where the time goes",
        "",
        "- Intake (PostgreSQL, one client): the bearer-token check is one statement in autocommit "
        "on the driver; then BEGIN, one read of the facts, the person's insert when new, the "
        "interaction, invitation and message in one statement sent with the audit head's locked "
        "read (one sync), the entries' insert with the head's move, and COMMIT: 6 waits for a "
        "known person, 7 for a new one (libpq's trace; section 1 counts them so). A request is CPU"
        " from end to end, one process after the other: about 1.4 ms of the server's Python (the "
        "route's thread two thirds, the event loop a third), 1.2 ms of PostgreSQL and 0.5 ms of "
        "the client (3,000 requests, the processes' CPU time). PostgreSQL's statement log over "
        "1,000 requests: COMMIT 267 µs (the WAL flush), the interactions' statement 189 µs, the "
        "facts' read 198 µs of which 182 µs planning (planned afresh at each execution on purpose:"
        " a generic plan made while a table was small would scan it once it is large), a new "
        "person 53 µs, the audit append 51 µs, the token check 27 µs. Sending BEGIN with the read "
        "and COMMIT with the append (4 waits) made it slower: psycopg's pipeline mode costs more "
        "CPU than a loopback round trip (about 23 µs) saves (docs/benchmarks-history.md, section "
        "1).",
        "- Send worker (null transport, batch 100): a batch is one transaction: the last batch's "
        "outcomes (the invitations' update, the parts' insert and the messages' update sent "
        "together), then the take (one locking joined read), deciding and rendering in Python, and"
        " the lease with both windows in flight. PostgreSQL's statement log for one batch: the "
        "invitations' update about 1 ms (seven indexes, and a status change is never a HOT "
        "update), the messages' two updates 0.6-0.8 ms each, the parts' insert 0.75 ms (0.45 ms of"
        " it the foreign key's check, row by row), the take's read 0.8 ms (0.3 ms planning), "
        "COMMIT 0.35 ms; the worker's Python about 2.2 ms (deciding and rendering 0.86, the read's"
        " rows 0.40, recording 0.40, the lease 0.23). The limit writes each message once: those "
        "writes are most of the gap. Recording the last outcomes on a thread of their own while "
        "the next batch is taken gained nothing (both compete with PostgreSQL for the machine's "
        "two cores).",
        "- SMPP dispatch (batches of 500, windows of 50): the worker's main thread is the critical"
        " path, about 58 ms a batch: the take 12-13 ms (nothing on the wire meanwhile), nine "
        "window transactions of 2.6-3.4 ms each (one round trip each: BEGIN, the window's outcomes"
        " and the window after next in flight, COMMIT), handing ten windows to the transport 0.46 "
        "ms each; the SMSC's answers are in by the time a window is collected. Python holds the "
        "GIL about a third of that time; the rest is waiting on PostgreSQL with both cores nearly "
        "busy.",
        "",
        "## What was changed for speed",
        "",
        "Each change was measured by running this benchmark's worker or intake part at the commits"
        " before and after it, alternately, three times (PostgreSQL ratios, medians; the machine's"
        " load changed between sessions, so compare within a row).",
        "",
        *_table(
            ["Change", "Before", "After"],
            [
                [
                    "Worker: claim, prepare and mark the first window in flight in one transaction"
                    " (4 commits a batch to 3)",
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
                    "Worker: invitations marked sent found by primary key (`ANY(ARRAY(…))`), not "
                    "by a hash join over a scan of invitations",
                    "0.205×",
                    "0.246×",
                ],
                [
                    "Intake: statements built once (Core, bound parameters); pool pings only for a"
                    " connection idle 10 s or whose socket shows the server spoke (2 round trips a"
                    " request fewer); on PostgreSQL interaction, invitation and message in one "
                    "statement (2 fewer)",
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
                    "Claim: `id = ANY(ARRAY(SELECT … SKIP LOCKED))` instead of `id IN (SELECT …)`,"
                    " which the planner hash-joined against a scan of the whole queue at 20,000 "
                    "queued (a nested loop at 1,000,000)",
                    "20,000 queued: 3.8 ms vs 2.3 ms",
                    "index and primary key at every size",
                ],
                [
                    "Intake (intake3): plain route in front of FastAPI's; token check on the "
                    "driver in autocommit; people, interactions and the audit head's lock in one "
                    "pipeline; (main and intake3 alternately, 6 runs each, load 0.9–3.4, with two "
                    "things since taken out: a generic plan for the facts read, the person's "
                    "insert in the pipeline)",
                    "0.166× (8 waits)",
                    "0.196× (6 waits; now 7 for a new person)",
                ],
                [
                    "Worker (PostgreSQL, batch 100, null transport): pipelined windows; message "
                    "parts linked from `unnest` arrays; the lease renewed only when half ran out "
                    "(main re-measured alternately, load 1.1)",
                    "0.123×",
                    "0.186×",
                ],
                [
                    "Worker (PostgreSQL, batch 100, null transport; `--only worker`, QUIET window "
                    "05:11–05:12 UTC, load 0.7–0.9, a86a2a4 and 85cad7e alternating, 3 runs each):"
                    " a window already answered when the one before it is recorded is recorded "
                    "with it (a batch that fits in flight: one transaction, not two); the outbox's"
                    " joined rows as named tuples, not SQLAlchemy Rows looked up by name (deciding"
                    " and rendering 500 messages 10.6–12.6 → 4.7 ms); one AES-GCM opener per key; "
                    "a batch's survey texts by one prebuilt statement; the queue's indexes "
                    "partial; integer lists bound as one text (`IntArray`)",
                    "0.193×, 0.160×, 0.173× (median 0.173×; 5,067–6,356 msg/s)",
                    "0.191×, 0.232×, 0.210× (median **0.210×**; 6,111–8,607 msg/s)",
                ],
                [
                    "SMPP dispatch, CPU a message (worker process; PostgreSQL), 5,000 messages, "
                    "batch 1,000, worker window 200, load 6-9: pipelining, `unnest` upserts of "
                    "parts and receipts, lazy lease renewal",
                    "424-518 µs; 214-296 µs",
                    "248-264 µs; 172 µs",
                ],
                [
                    "Same: GSM-7 `split` by `str.translate` and one regex (35 to 7 µs a text), "
                    "receipts settled from arrays, receipt dates read without `strptime`",
                    "248-264 µs; 172 µs",
                    "192-234 µs; 146-166 µs",
                ],
                [
                    "SMPP dispatch, 20,000 messages, defaults, QUIET window (load 0.1–1.3), main "
                    "and smppfast alternating: the next window handed to the transport before the "
                    "last is answered (`Transport.hand`); on PostgreSQL one statement submits a "
                    "window and starts the next",
                    "0.448× (0.448, 0.475, 0.445; 3,971 msg/s)",
                    "0.532× (0.532, 0.536, 0.489; 4,917 msg/s)",
                ],
                [
                    "SMPP dispatch, 20,000 messages, defaults, QUIET window (load 0.8–1.4), main "
                    "(339ec86) and smppfast2 alternating, single runs: on PostgreSQL a window's "
                    "three statements sent together (psycopg pipeline mode)",
                    "0.463× (0.451, 0.463, 0.491, 0.416, 0.503)",
                    "0.524× (0.590, 0.513, 0.527, 0.521; 4,672–5,365 msg/s)",
                ],
                [
                    "SMPP dispatch, 20,000 messages, defaults, dispatch-only harness, QUIET window"
                    " 04:48–04:57 (load 0.1–1.9), main (040f64b) and smpp3 alternating, 17 runs "
                    "each: a window's transaction one round trip (BEGIN, statements, settling, "
                    "COMMIT in one sync), the receipts' dispatcher asleep while it lingers, text "
                    "arrays as one text",
                    "0.471× (3,102 msg/s, 175 µs a message)",
                    "0.579× (e3f4c80; 3,758 msg/s, 143 µs); the benchmark after main's merge and "
                    "the settling plans (f99dbee, 05:41–05:45): 0.552×, 0.589× against 040f64b's "
                    "0.497×",
                ],
                [
                    "SMPP dispatch, 20,000 messages, defaults, QUIET window 07:50–07:54 (load "
                    "0.2–1.2), main (f015ae7) and smpp4 alternating, medians of 3 each: the lease "
                    "and the window's update cast their list of ids once, not on every row",
                    "0.721× (0.704, 0.746, 0.721; 6,429–6,864 msg/s)",
                    "**0.845×** (0.893, 0.827, 0.845; 7,422–8,181 msg/s; 842987a); target 2 (null "
                    "transport, PostgreSQL) 0.209× → 0.245× (medians of 4)",
                ],
            ],
        ),
        "",
    ]
