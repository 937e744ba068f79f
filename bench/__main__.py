"""``python -m bench``: run the benchmarks of issue 5 (HTTP intake vs bare FastAPI, send worker vs
raw SQL, claim with a long queue, audit verify of a long log, worker memory) on SQLite and, if
reachable, PostgreSQL; write ``docs/benchmarks.md`` with each figure against its target."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import (
    audit_verify,
    claim,
    intake,
    intake_batch,
    respondent,
    respondent_report,
    send_worker,
    sms_dispatch,
)
from bench.common import DEFAULT_PG_URL, ROOT, machine_facts, postgres_version
from bench.report import Results, render, targets
from tilfreds.invitations.schemas import BATCH_MAX_ROWS

console = Console()
PARTS = ("intake", "worker", "claim", "audit", "sms_dispatch", "batch", "respondent")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    add = parser.add_argument
    add("--messages", type=int, default=2000, help="due messages the worker drains (2000)")
    add("--requests", type=int, default=500, help="interactions POSTed to each server (500)")
    add(
        "--batch-size",
        type=int,
        default=100,
        help="worker batch size, for both tilfreds and the raw loop (100, as targets 2 and 3 "
        "are set; the SMPP dispatch uses tilfreds's defaults)",
    )
    add("--repeat", type=int, default=3, help="timed runs (worker) and rounds (intake) (3)")
    add("--backlog", type=int, default=1_000_000, help="due messages for the long claim (1M)")
    add("--small-queue", type=int, default=1000, help="due messages for the short claim (1000)")
    add("--claims", type=int, default=50, help="claims timed at each queue length (50)")
    add("--audit-entries", type=int, default=1_000_000, help="audit log length (1M)")
    add("--sms-messages", type=int, default=20_000, help="messages sent over SMPP (20000)")
    add("--smpp-window", type=int, default=50, help="submit_sm in flight, both contenders (50)")
    add("--smpp-rate", type=float, default=200.0, help="per-bind rate limit measured (200/s)")
    add("--rate-seconds", type=float, default=30.0, help="span the rate is measured over (30)")
    add("--smsc-port", type=int, default=27751, help="port of the SMSC simulator (27751)")
    add("--batch-rows", type=int, default=1_000_000, help="interactions for batch intake (1M)")
    add("--respondents", type=int, default=3000, help="respondents timed per server (3000)")
    add("--connections", type=int, default=8, help="respondent client connections (8)")
    add("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    add("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL benchmark database (emptied)")
    add("--no-postgres", action="store_true", help="SQLite only (claim and audit are skipped)")
    add("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report to write")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")
    if min(args.messages, args.batch_size, args.repeat, args.claims) < 1 or args.requests < 2:
        parser.error("--messages, --batch-size, --repeat, --claims >= 1; --requests >= 2")
    if not (1 <= args.respondents <= 100_000 and 1 <= args.connections <= 64):
        parser.error("need 1 <= --respondents <= 100000 and 1 <= --connections <= 64")
    if not 1 <= args.batch_rows <= 10_000_000:
        parser.error("need 1 <= --batch-rows <= 10000000")
    if not 1 <= args.small_queue < args.backlog or args.audit_entries < 1:
        parser.error("need 1 <= --small-queue < --backlog and --audit-entries >= 1")
    if min(args.sms_messages, args.smpp_window) < 1 or min(args.smpp_rate, args.rate_seconds) <= 0:
        parser.error("--sms-messages, --smpp-window >= 1; --smpp-rate, --rate-seconds > 0")
    if args.small_queue < args.batch_size:
        parser.error("--small-queue must hold at least one batch")
    if (
        max(args.requests, args.messages // 10) > 100_000
        or max(args.messages, args.backlog, args.audit_entries) > 10_000_000
    ):
        parser.error("keep the sizes bounded (requests <= 100000, others <= 10000000)")
    return args


def command_line(args: argparse.Namespace) -> str:
    cmd = ".venv/bin/python -m bench"
    defaults = parse_args([])
    for name in (
        "messages",
        "requests",
        "batch_size",
        "repeat",
        "backlog",
        "small_queue",
        "claims",
        "audit_entries",
        "sms_messages",
        "smpp_window",
        "smpp_rate",
        "rate_seconds",
        "batch_rows",
        "respondents",
        "connections",
        "only",
    ):
        if getattr(args, name) != getattr(defaults, name):
            cmd += f" --{name.replace('_', '-')} {getattr(args, name)}"
    return cmd + (" --no-postgres" if args.no_postgres else "")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = Results()
    pg = None if args.no_postgres else postgres_version(args.pg_url)
    if args.no_postgres:
        results.skipped.append("PostgreSQL (--no-postgres)")
    elif pg is None:
        results.skipped.append(f"PostgreSQL (unreachable at {args.pg_url})")
    kinds = ["sqlite"] + (["postgresql"] if pg else [])

    with tempfile.TemporaryDirectory(prefix="tilfreds-bench-") as tmp:
        if "intake" in args.parts:
            for n in range(1, args.repeat + 1):
                console.rule(f"Intake over HTTP, round {n}/{args.repeat}")
                results.intake += intake.run_round(
                    kinds,
                    requests=args.requests,
                    workdir=Path(tmp),
                    pg_url=args.pg_url,
                    round_no=n,
                )
        if "worker" in args.parts:
            for kind in kinds:
                console.rule(f"Send worker on {kind}")
                results.worker.append(
                    send_worker.run(
                        kind,
                        messages=args.messages,
                        batch_size=args.batch_size,
                        repeat=args.repeat,
                        workdir=Path(tmp),
                        pg_url=args.pg_url,
                    )
                )
    if pg and "claim" in args.parts:
        console.rule("Claim with a long queue")
        results.claim = claim.run(
            pg_url=args.pg_url,
            small=args.small_queue,
            large=args.backlog,
            claims=args.claims,
            batch_size=args.batch_size,
        )
    if pg and "batch" in args.parts:
        console.rule("Batch intake: API and CSV against a raw COPY")
        with tempfile.TemporaryDirectory(prefix="tilfreds-bench-") as tmp:
            results.batch = intake_batch.run(
                pg_url=args.pg_url, rows=args.batch_rows, batch=BATCH_MAX_ROWS, workdir=Path(tmp)
            )
    if pg and "audit" in args.parts:
        console.rule("audit verify of a long log")
        results.audit = audit_verify.run(pg_url=args.pg_url, entries=args.audit_entries)

    if pg and "sms_dispatch" in args.parts:
        console.rule("SMS dispatch over SMPP")
        with tempfile.TemporaryDirectory(prefix="tilfreds-bench-") as tmp:
            results.sms = sms_dispatch.run(
                pg_url=args.pg_url,
                workdir=Path(tmp),
                messages=args.sms_messages,
                window=args.smpp_window,
                repeat=args.repeat,
                port=args.smsc_port,
                rate=args.smpp_rate,
                rate_seconds=args.rate_seconds,
            )

    answered = None
    if pg and "respondent" in args.parts:
        console.rule("Respondent: survey page and answers, PostgreSQL, two server processes")
        with tempfile.TemporaryDirectory(prefix="tilfreds-bench-") as tmp:
            answered = respondent.run(
                pg_url=args.pg_url,
                respondents=args.respondents,
                connections=args.connections,
                workdir=Path(tmp),
            )

    mine = respondent_report.target_rows(answered) if answered is not None else []
    text = render(
        command=command_line(args),
        facts=machine_facts(pg),
        results=results,
        more_targets=mine,
        more_sections=respondent_report.section(answered) if answered is not None else [],
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    table = Table(title="Targets")
    for col in ("target", "figure", "limit", ""):
        table.add_column(col)
    for row in targets(results) + mine:
        table.add_row(*(cell.replace("**", "").replace("`", "") for cell in row))
    console.print(table)
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
