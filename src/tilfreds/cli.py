"""The ``tilfreds`` command: serve, worker, db, demo, token, audit, keys. Heavy imports stay inside
commands so ``tilfreds --help`` is quick."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tilfreds.config import load_settings
from tilfreds.errors import ConfigurationError, TilfredsError

if TYPE_CHECKING:
    from tilfreds.runtime import Runtime

app = typer.Typer(help="tilfreds: customer-satisfaction surveys over SMS.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)
out = Console()


def _runtime() -> Runtime:
    from tilfreds.runtime import build_runtime

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return build_runtime(load_settings())
    except ConfigurationError as exc:
        console.print(f"[red]configuration error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def _prepare_schema(rt: Runtime) -> None:
    """Embedded: migrate on start. PostgreSQL: refuse to run against an old schema."""
    from tilfreds import migrate
    from tilfreds.surveys.service import ensure_default_survey

    if rt.settings.is_embedded:
        rt.upgrade_schema()
    elif not migrate.is_current(rt.db):
        console.print("[red]the database schema is not current:[/red] run `tilfreds db upgrade`")
        raise typer.Exit(2)
    with rt.db.unit_of_work() as session:
        ensure_default_survey(session, now=rt.clock.now())


def _serve(rt: Runtime, host: str, port: int) -> None:
    import uvicorn

    from tilfreds.app import create_app

    if not rt.settings.public_url:
        rt.settings.public_url = f"http://{host}:{port}"

    uvicorn.run(
        create_app(rt, run_worker=rt.settings.is_embedded),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web pages and the API (and, on SQLite, the send worker in-process)."""
    rt = _runtime()
    _prepare_schema(rt)
    _serve(rt, host, port)


@app.command()
def worker(
    drain: Annotated[bool, typer.Option(help="Exit once nothing is due.")] = False,
) -> None:
    """Run a send worker. Start as many as you like against one PostgreSQL database."""
    from tilfreds.worker import Worker

    rt = _runtime()
    if not rt.settings.public_url:
        console.print(
            "[red]set TILFREDS_PUBLIC_URL[/red]: the address respondents open, which "
            "starts every survey link this worker sends"
        )
        raise typer.Exit(2)
    w = Worker(rt)
    if drain:
        out.print(f"worker {w.id} sent or skipped {w.drain()} messages")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    w.run(stop)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version."""
    rt = _runtime()
    rt.upgrade_schema()
    with rt.db.unit_of_work() as session:
        from tilfreds.surveys.service import ensure_default_survey

        ensure_default_survey(session, now=rt.clock.now())
    out.print("database is up to date")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve with a demo survey, sample answers and three fresh invitations to click through."""
    from tilfreds import demo as demo_data
    from tilfreds.operators.service import create_token

    rt = _runtime()
    _prepare_schema(rt)
    added = demo_data.seed(rt)
    with rt.db.unit_of_work() as session:
        token = create_token(session, name="demo", role="admin", now=rt.clock.now())
    base = f"http://{host}:{port}"
    out.print(f"[bold]tilfreds demo[/bold]: {added} sample interactions added")
    out.print(f"  phone inbox: {base}/dev/phone")
    out.print(f"  dashboard:   {base}/dashboard  (sign in with the token below)")
    out.print(f"  API docs:    {base}/docs")
    out.print(f"DEMO_TOKEN={token}", soft_wrap=True)
    _serve(rt, host, port)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="Role: admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses the token.")],
) -> None:
    """Create an API bearer token; it is printed once and never stored."""
    from tilfreds.operators.service import create_token

    rt = _runtime()
    try:
        with rt.db.unit_of_work() as session:
            token = create_token(session, name=name, role=role, now=rt.clock.now())
    except TilfredsError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    out.print(token, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:MAC",
            help="A head printed by an earlier run and kept outside the database: fail unless "
            "that entry still has that MAC.",
        ),
    ] = None,
) -> None:
    """Check the audit log's keyed chain from one snapshot; exit 1 if any entry was changed,
    inserted or removed, 2 if a key it needs is not configured. The last line printed is the head
    (SEQ:MAC): keep it outside the database to pass as --expect-head later."""
    from tilfreds.audit.service import Head, verify

    anchor = None
    if expect_head is not None:
        try:
            anchor = Head.parse(expect_head)
        except ValueError as exc:
            console.print(f"[red]--expect-head:[/red] {exc}")
            raise typer.Exit(2) from exc
    rt = _runtime()
    with rt.db.snapshot() as session:
        result = verify(session, expect_head=anchor)
    if result.missing_key:
        out.print(f"[red]audit log cannot be verified:[/red] {result.problem}")
        raise typer.Exit(2)
    if not result.ok:
        out.print(f"[red]audit log is broken:[/red] {result.problem}")
        raise typer.Exit(1)
    anchored = f", entry {anchor.seq} matches the anchor" if anchor else ""
    out.print(f"audit log intact: {result.entries} entries{anchored}; head:")
    out.print(str(result.head), soft_wrap=True)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new master key for TILFREDS_SECRET_KEY."""
    from tilfreds.crypto import generate_master_key

    out.print(generate_master_key(), soft_wrap=True)
