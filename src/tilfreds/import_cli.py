"""``tilfreds import interactions FILE.csv``: a case system's export, streamed in chunks (constant
memory, any size), each chunk received like one API batch and committed (one audit entry each).
The columns are the API's field names, with ``name``, ``phone`` and ``locale`` for the customer and
``flags`` separated by ``;``. Bad rows are reported (row, field, reason; never the value) and the
good ones imported; running the same file again imports nothing twice (P10: unknown columns are
refused before anything is read)."""

from __future__ import annotations

import csv
import io
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tilfreds.invitations.schemas import BATCH_MAX_ROWS

if TYPE_CHECKING:
    from tilfreds.api.intake_rows import Received
    from tilfreds.runtime import Runtime

import_app = typer.Typer(help="Import from a case system.", no_args_is_help=True)
console = Console(stderr=True)

TOP_LEVEL = ("external_id", "survey", "channel", "reason", "occurred_at", "case_ref")
CUSTOMER = ("name", "phone", "locale")
COLUMNS = (*TOP_LEVEL, *CUSTOMER, "flags")
REQUIRED = ("external_id", "name", "phone", "channel", "reason", "occurred_at")


class _Counted(io.RawIOBase):
    """A binary file that counts the bytes read from it, for the progress bar."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.read_bytes = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def check_header(header: Sequence[str] | None) -> str | None:
    """Why this header cannot be imported, or None. A column's own text is not repeated."""
    if not header:
        return "the file is empty: the first line must name the columns"
    for n, column in enumerate(header, start=1):
        if column not in COLUMNS:
            return f"column {n} is not a field an interaction takes; the columns are: " + ", ".join(
                COLUMNS
            )
    if len(set(header)) != len(header):
        return "a column appears twice"
    missing = [c for c in REQUIRED if c not in header]
    return f"required columns are missing: {', '.join(missing)}" if missing else None


def as_payload(record: dict[str | None, Any]) -> dict[str, Any]:
    """One CSV record as the JSON the API takes; an empty cell is a field left out."""
    if record.get(None) is not None:  # more cells than the header has columns
        return {"__extra_cells": True}
    body: dict[str, Any] = {k: record[k] for k in TOP_LEVEL if record.get(k)}
    body["customer"] = {k: record[k] for k in CUSTOMER if record.get(k)}
    if flags := record.get("flags"):
        body["flags"] = [f.strip() for f in flags.split(";") if f.strip()]
    return body


def chunks(reader: csv.DictReader[str], size: int) -> Iterator[list[tuple[int, object]]]:
    """``size`` numbered records at a time; a record's number is its spreadsheet row (the header
    is row 1)."""
    chunk: list[tuple[int, object]] = []
    for n, record in enumerate(reader, start=2):
        chunk.append((n, as_payload(record)))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@import_app.command("interactions")
def import_interactions(
    file: Annotated[Path, typer.Argument(help="CSV file, UTF-8, header line first.")],
    errors: Annotated[
        Path | None, typer.Option(help="Write the bad rows' report here (CSV) instead of stderr.")
    ] = None,
    chunk: Annotated[
        int, typer.Option(min=1, max=BATCH_MAX_ROWS, help="Rows per transaction.")
    ] = 5000,
    processes: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Processes checking and writing chunks: about one per core."
        ),
    ] = 1,
) -> None:
    """Import interactions from a CSV file; exit 1 if any row was refused."""
    from tilfreds.cli import _prepare_schema, _runtime
    from tilfreds.serving import tune_gc

    rt = _runtime()
    _prepare_schema(rt)
    tune_gc()
    try:
        raw = file.open("rb")
    except OSError as exc:
        console.print(f"[red]cannot read the file:[/red] {exc.strerror}")
        raise typer.Exit(2) from exc
    report = errors.open("w", newline="") if errors else sys.stderr
    writer = csv.writer(report)
    writer.writerow(["row", "field", "code", "message"])
    totals = {"rows": 0, "created": 0, "existing": 0, "refused": 0}
    with raw, report if errors else nullcontext():
        counted = _Counted(raw)
        text = io.TextIOWrapper(io.BufferedReader(counted), encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        try:
            problem = check_header(reader.fieldnames)
        except (UnicodeDecodeError, csv.Error) as exc:
            problem = f"the header cannot be read: {type(exc).__name__}"
        if problem:
            console.print(f"[red]refused:[/red] {problem}")
            raise typer.Exit(2)
        with _progress() as bar:
            task = bar.add_task("importing", total=file.stat().st_size)

            def done(received: Received, rows: int) -> None:
                for e in received.errors:
                    writer.writerow([e.row, e.field or "", e.code, e.message])
                totals["rows"] += rows
                totals["created"] += received.created
                totals["existing"] += received.existing
                totals["refused"] += len(received.errors)
                bar.update(task, completed=counted.read_bytes)

            try:
                _import_chunks(rt, chunks(reader, chunk), processes=processes, done=done)
            except (UnicodeDecodeError, csv.Error) as exc:
                console.print(
                    f"[red]stopped after row {totals['rows'] + 1}:[/red] the file cannot be read "
                    f"further ({type(exc).__name__}); the rows before it are imported"
                )
                raise typer.Exit(2) from exc
    console.print(
        f"{totals['rows']} rows: {totals['created']} imported, {totals['existing']} received "
        f"before, {totals['refused']} refused"
    )
    if totals["refused"]:
        raise typer.Exit(1)


def _import_chunks(
    rt: Runtime,
    batches: Iterator[list[tuple[int, object]]],
    *,
    processes: int,
    done: Callable[[Received, int], None],
) -> None:
    """Check and write every chunk, reported in file order. In this process: the next chunk is
    checked while the one before is written in a writer thread (which mostly waits for the
    database). With ``processes`` > 1: each chunk is checked and written whole by one of that
    many processes (checking is Python work, one core each), a few chunks in flight. Either
    way a file that cannot be read further raises once every chunk before the fault is
    written."""
    from tilfreds.api.intake_rows import check_rows, receive_checked

    in_flight: deque[tuple[Future[Received], int]] = deque()
    pool = (
        ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_started)
        if processes > 1
        else None
    )
    with ThreadPoolExecutor(max_workers=1) as writer:
        try:
            for batch in batches:
                if pool is not None:
                    in_flight.append((pool.submit(_import_chunk, batch), len(batch)))
                else:
                    checked = check_rows(batch, rt.settings)
                    in_flight.append((writer.submit(receive_checked, rt, checked, actor="cli"),
                                      len(batch)))  # fmt: skip
                while len(in_flight) > processes:
                    received, rows = in_flight.popleft()
                    done(received.result(), rows)
        finally:
            while in_flight:
                received, rows = in_flight.popleft()
                done(received.result(), rows)
            if pool is not None:
                pool.shutdown()


_RUNTIME: list[Runtime] = []  # an import process's own runtime (and database pool)


def _started() -> None:
    from tilfreds.config import load_settings
    from tilfreds.runtime import build_runtime
    from tilfreds.serving import tune_gc

    _RUNTIME.append(build_runtime(load_settings()))
    tune_gc()


def _import_chunk(batch: list[tuple[int, object]]) -> Received:
    """One chunk, checked and written in an import process; only the counts and the errors go
    back."""
    from tilfreds.api.intake_rows import receive_rows

    received = receive_rows(_RUNTIME[0], batch, actor="cli")
    received.results = []
    return received


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
