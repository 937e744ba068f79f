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
    from tilfreds.surveys.service import ensure_default_survey

    if rt.settings.is_embedded:
        rt.upgrade_schema()
    else:
        _require_current_schema(rt)
    _check_keys(rt)
    with rt.db.unit_of_work() as session:
        ensure_default_survey(session, now=rt.clock.now())


def _require_current_schema(rt: Runtime) -> None:
    from tilfreds import migrate

    if not migrate.is_current(rt.db):
        console.print("[red]the database schema is not current:[/red] run `tilfreds db upgrade`")
        raise typer.Exit(2)


def _check_keys(rt: Runtime) -> None:
    """Refuse a key the database was not sealed with (lost, or changed by mistake)."""
    from tilfreds import keyring
    from tilfreds.rotation.sealed import key_ids_in_use

    try:
        added = keyring.verify_at_start(
            rt.db,
            rt.keys,
            source=keyring.key_source(rt.settings.secret_key, rt.settings.data_dir),
            now=rt.clock.now(),
            in_use=key_ids_in_use,
        )
    except ConfigurationError as exc:
        console.print(f"[red]configuration error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if added:
        console.print(f"registered encryption key {', '.join(added)}")


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
    _require_current_schema(rt)
    _check_keys(rt)
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
    _check_keys(rt)
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
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 if any entry was changed or removed."""
    from tilfreds.audit.service import verify

    rt = _runtime()
    with rt.db.read_only() as session:
        result = verify(session)
    if not result.ok:
        out.print(f"[red]audit log is broken:[/red] {result.problem}")
        raise typer.Exit(1)
    out.print(
        f"audit log intact: {result.entries} entries, head {result.head_hash}", soft_wrap=True
    )


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new master key for TILFREDS_SECRET_KEY."""
    from tilfreds.crypto import generate_master_key

    out.print(generate_master_key(), soft_wrap=True)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
) -> None:
    """Move every value sealed with a previous key to the current key, while tilfreds serves."""
    from rich.progress import Progress

    from tilfreds.rotation import service as rotation

    rt = _runtime()
    _require_current_schema(rt)
    _check_keys(rt)
    with rt.db.read_only() as session:
        work = rotation.plan(session, rt.keys)
    unreadable = 0
    with Progress(console=console) as progress:
        tasks = {
            name: progress.add_task(name, total=total) for name, total in work.items() if total
        }
        steps = rotation.rotate(
            rt.db, rt.keys, actor="cli", now=rt.clock.now(), batch_size=batch_size
        )
        try:
            for step in steps:
                if step.task not in tasks:  # rows a concurrent writer sealed with an old key
                    tasks[step.task] = progress.add_task(step.task, total=None)
                progress.advance(tasks[step.task], step.rows)
                unreadable += step.unreadable
        except TilfredsError as exc:
            console.print(f"[red]{exc.message}[/red]: run `tilfreds keys rotate` again")
            raise typer.Exit(1) from exc
    if unreadable:
        out.print(f"[red]{unreadable} rows no configured key opens were left as they are[/red]")
        raise typer.Exit(1)
    out.print(f"everything is sealed with key {rt.keys.current_id}; see `tilfreds keys status`")


@keys_app.command("status")
def keys_status() -> None:
    """Per key: registered, configured, what is still sealed with it, and whether it can go."""
    from tilfreds.rotation.status import status

    rt = _runtime()
    _require_current_schema(rt)
    with rt.db.read_only() as session:
        report = status(session, rt.keys)
    for key in report:
        row = key.registered
        registered = "not registered" if row is None else f"registered {row.created_at:%Y-%m-%d}"
        if row is not None and row.retired_at is not None:
            registered += f", retired {row.retired_at:%Y-%m-%d}"
        holds = ", ".join(f"{table} {n}" for table, n in sorted(key.held.items())) or "nothing"
        out.print(f"[bold]key {key.key_id}[/bold]  {key.configured}  {registered}", soft_wrap=True)
        out.print(f"  holds: {holds}", soft_wrap=True)
        out.print(f"  {key.advice}", soft_wrap=True)
