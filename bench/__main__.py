"""``python -m bench``: run every benchmark (send worker vs raw SQL, HTTP intake vs bare FastAPI,
worker memory) on SQLite and, if reachable, PostgreSQL; write ``docs/benchmarks.md``."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import intake, send_worker
from bench.common import DEFAULT_PG_URL, ROOT, machine_facts, postgres_version
from bench.report import NAMES, render
from tilfreds.config import Settings

console = Console()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--messages", type=int, default=2000, help="due messages the worker drains (2000)"
    )
    parser.add_argument(
        "--requests", type=int, default=500, help="interactions POSTed to each server (500)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings.model_fields["worker_batch_size"].default,
        help="worker batch size, for both tilfreds and the raw loop (tilfreds's default)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed worker runs (and limit runs) per database (3)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL benchmark database")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report to write"
    )
    args = parser.parse_args(argv)
    if min(args.messages, args.batch_size, args.repeat) < 1 or args.requests < 2:
        parser.error("--messages, --batch-size and --repeat must be >= 1, --requests >= 2")
    if args.requests > 100_000 or args.messages > 1_000_000:
        parser.error("keep the sizes bounded (--requests <= 100000, --messages <= 1000000)")
    return args


def command_line(args: argparse.Namespace) -> str:
    cmd = ".venv/bin/python -m bench"
    defaults = parse_args([])
    for name in ("messages", "requests", "batch_size", "repeat"):
        if getattr(args, name) != getattr(defaults, name):
            cmd += f" --{name.replace('_', '-')} {getattr(args, name)}"
    return cmd + (" --no-postgres" if args.no_postgres else "")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    skipped: list[str] = []
    pg = None if args.no_postgres else postgres_version(args.pg_url)
    if args.no_postgres:
        skipped.append("PostgreSQL (--no-postgres)")
    elif pg is None:
        skipped.append(f"PostgreSQL (unreachable at {args.pg_url})")
    kinds = ["sqlite"] + (["postgresql"] if pg else [])

    worker_results: list[send_worker.WorkerResult] = []
    intake_results: list[intake.IntakeResult] = []
    with tempfile.TemporaryDirectory(prefix="tilfreds-bench-") as tmp:
        for kind in kinds:
            console.rule(f"Send worker on {NAMES[kind]}")
            worker_results.append(
                send_worker.run(
                    kind,
                    messages=args.messages,
                    batch_size=args.batch_size,
                    repeat=args.repeat,
                    workdir=Path(tmp),
                    pg_url=args.pg_url,
                )
            )
        console.rule("Intake over HTTP")
        intake_results.append(intake.run_echo(requests=args.requests))
        for kind in kinds:
            intake_results.append(
                intake.run_tilfreds(
                    kind, requests=args.requests, workdir=Path(tmp), pg_url=args.pg_url
                )
            )
        # the limit again, after tilfreds, to show how much the machine drifted during the run
        intake_results.append(intake.run_echo(requests=args.requests))

    facts = machine_facts(pg)
    text = render(
        command=command_line(args),
        facts=facts,
        worker=worker_results,
        intake=intake_results,
        skipped=skipped,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    summarise(worker_results, intake_results)
    console.print(f"wrote {args.output}")
    return 0


def summarise(
    worker: list[send_worker.WorkerResult], intake_results: list[intake.IntakeResult]
) -> None:
    table = Table(title="Send worker (messages/second)")
    for col in ("database", "tilfreds", "raw SQL limit", "ratio", "peak RSS", "tracemalloc"):
        table.add_column(col, justify="right")
    for r in worker:
        table.add_row(
            r.database,
            f"{r.tilfreds_rate:,.0f}",
            f"{r.baseline_rate:,.0f}",
            f"{r.ratio:.3f}",
            f"{r.rss_peak_kib / 1024:.1f} MiB",
            f"{r.tracemalloc_peak_bytes / 1024**2:.1f} MiB",
        )
    console.print(table)
    table = Table(title="Intake over HTTP")
    for col in ("server", "database", "req/s", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    for i in intake_results:
        table.add_row(i.server, i.database, f"{i.rate:,.0f}", f"{i.p50:.2f}", f"{i.p95:.2f}")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
