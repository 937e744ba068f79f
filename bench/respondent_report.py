"""The respondent benchmark's part of ``docs/benchmarks.md``: its targets (≥ 500 answers/s and a
p99 under 100 ms, on PostgreSQL with two server processes) beside the bare Starlette endpoint
measured in the same run, and the details. Measures nothing."""

from __future__ import annotations

from bench.common import md_table
from bench.respondent import COUNTED, PROCESSES, SLICE, WARMUP, RespondentResult, Side, percentile

TARGET_RATE = 500.0  # answers a second (one GET and one POST each)
TARGET_P99_MS = 100.0  # for the GET and for the POST


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**miss**"


def _p99(side: Side) -> float:
    return max(percentile(side.get_ms, 99), percentile(side.post_ms, 99))


def target_rows(r: RespondentResult) -> list[list[str]]:
    mine = r.tilfreds
    return [
        [
            f"9. Respondent, PostgreSQL, {PROCESSES} server processes: answers/s (GET `/s/{{code}}`"
            " + POST answers)",
            f"{mine.rate:.0f}/s ({r.ratio:.3f}× the bare endpoint's {r.bare.rate:.0f}/s)",
            f"≥ {TARGET_RATE:.0f}/s",
            _verdict(mine.rate >= TARGET_RATE),
        ],
        [
            "9. Respondent: p99 of the GET and of the POST",
            f"GET {percentile(mine.get_ms, 99):.1f} ms, POST {percentile(mine.post_ms, 99):.1f} ms",
            f"< {TARGET_P99_MS:.0f} ms",
            _verdict(_p99(mine) < TARGET_P99_MS),
        ],
    ]


def section(r: RespondentResult) -> list[str]:
    rows = []
    for side in (r.tilfreds, r.bare):
        name = "tilfreds" if side.server == "tilfreds" else "bare Starlette"
        rows.append(
            [
                name,
                f"{side.rate:.0f}",
                " / ".join(f"{percentile(side.get_ms, p):.1f}" for p in (50, 95, 99)),
                " / ".join(f"{percentile(side.post_ms, p):.1f}" for p in (50, 95, 99)),
                f"{side.cpu_ms_per_request('server'):.2f}",
                f"{side.cpu_ms_per_request('machine'):.2f}",
                f"{100 * side.client_share:.0f} %",
            ]
        )
    get, post = r.get_trips, r.post_trips
    return [
        "## 9. Respondent (PostgreSQL)",
        "",
        f"Each respondent GETs the survey page and POSTs its answers (one invitation each, made "
        f"beforehand by the real intake), over {r.connections} keep-alive connections in "
        f"parallel, against {PROCESSES} server processes on one port; the bare Starlette app has "
        f"the same two routes (a fixed page; the form read and a 303) in {PROCESSES} processes. "
        f"{r.tilfreds.respondents} respondents a server after {WARMUP} warm-up ones, alternating "
        f"{SLICE} at a time. CPU is per request (GET or POST); `machine` is every process on it "
        "(the database's and the client's included); the client's share is of one core. "
        f"Load average as the run ended: {r.load}.",
        "",
        *md_table(
            [
                "server",
                "answers/s",
                "GET p50 / p95 / p99 ms",
                "POST p50 / p95 / p99 ms",
                "server CPU ms",
                "machine CPU ms",
                "client CPU",
            ],
            rows,
        ),
        "",
        f"Round trips to the database (counted in one server over {COUNTED} more respondents): "
        f"GET {r.per(get):.1f} ({r.per(get, 'statements'):.1f} statements, "
        f"{r.per(get, 'begin'):.0f} BEGIN), POST {r.per(post):.1f} "
        f"({r.per(post, 'statements'):.1f} statements, BEGIN and COMMIT).",
    ]
