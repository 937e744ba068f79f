"""The ``tilfreds`` command: serve, worker, db, demo, token, audit, keys, sms, survey, import.
Heavy imports stay inside commands so ``tilfreds --help`` is quick."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tilfreds.cli_keys import keys_app
from tilfreds.cli_sms import sms_app
from tilfreds.cli_surveys import survey_app
from tilfreds.config import load_settings
from tilfreds.errors import ConfigurationError, TilfredsError
from tilfreds.import_cli import import_app

if TYPE_CHECKING:
    from tilfreds.runtime import Runtime

app = typer.Typer(help="tilfreds: customer-satisfaction surveys over SMS.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(survey_app, name="survey")
app.add_typer(sms_app, name="sms")
app.add_typer(import_app, name="import")
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
        _upgrade(rt)
    else:
        _require_current_schema(rt)
    _check_keys(rt)
    with rt.db.unit_of_work() as session:
        ensure_default_survey(session, now=rt.clock.now())


def _upgrade(rt: Runtime) -> None:
    try:
        rt.upgrade_schema()
    except ConfigurationError as exc:  # a migration that refuses what it finds says why
        console.print(f"[red]cannot upgrade the database:[/red] {exc.message}")
        raise typer.Exit(2) from exc


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


def _listen(host: str, port: int, *, how_to_choose: str = "--port") -> socket.socket:
    """Take the port before anything else happens, so a busy port is one clear line and exit 2,
    not a traceback after the schema was migrated and the demo data seeded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # TCP named: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets whose protocol
    # says TCP; otherwise a page written in two pieces waits 40 ms for the browser's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # as uvicorn does: a port whose last connection is still in TIME_WAIT is free to use
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc}"
        console.print(
            f"[red]port {port} on {host} {why}[/red]; stop what listens there or choose another "
            f"port with {how_to_choose}",
            soft_wrap=True,
        )
        raise typer.Exit(2) from exc
    return sock


def _serve(rt: Runtime, sock: socket.socket, host: str, *, workers: int = 1) -> None:
    import uvicorn

    from tilfreds.app import create_app
    from tilfreds.serving import serve_workers, tune_gc, uvicorn_config

    port = sock.getsockname()[1]
    if not rt.settings.public_url:
        rt.settings.public_url = f"http://{host}:{port}"
    # uvicorn names the address only for sockets it opened itself
    logging.getLogger("tilfreds").info("listening on http://%s:%d", host, port)
    if workers > 1:
        rt.db.dispose()  # each process opens its own pool
        serve_workers(sock, host=host, public_url=rt.settings.public_url, workers=workers)
        return
    config = uvicorn_config(
        create_app(rt, run_worker=rt.settings.is_embedded, listen_host=host), host=host, port=port
    )
    tune_gc()
    uvicorn.Server(config).run(sockets=[sock])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Web processes (PostgreSQL only): about one per core."),
    ] = 1,
) -> None:
    """Serve the web pages and the API (and, on SQLite, the send worker in-process)."""
    with _listen(host, port) as sock:
        rt = _runtime()
        if workers > 1 and rt.settings.is_embedded:
            console.print(
                "[red]--workers needs PostgreSQL[/red]: on SQLite one process serves (the "
                "database has one writer, and the send worker runs inside it)"
            )
            raise typer.Exit(2)
        _prepare_schema(rt)
        _serve(rt, sock, host, workers=workers)


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
        try:
            drained = w.drain()
        finally:
            w.close()
        out.print(f"worker {w.id} sent or skipped {drained} messages")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    w.run(stop)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version."""
    rt = _runtime()
    _upgrade(rt)
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
    from tilfreds.api.dev import is_loopback
    from tilfreds.operators.service import create_token

    with _listen(host, port, how_to_choose="--port (make demo PORT=8012)") as sock:
        rt = _runtime()
        _prepare_schema(rt)
        added = demo_data.seed(rt)
        with rt.db.unit_of_work() as session:
            token = create_token(session, name="demo", role="admin", now=rt.clock.now())
        base = f"http://{host}:{sock.getsockname()[1]}"
        out.print(f"[bold]tilfreds demo[/bold]: {added} sample interactions added")
        out.print(f"  phone inbox: {base}/dev/phone")
        if not is_loopback(host):
            out.print("               (not on loopback: sign in with the token below first)")
        out.print(f"  dashboard:   {base}/dashboard  (sign in with the token below)")
        out.print(f"  API docs:    {base}/docs")
        out.print(f"DEMO_TOKEN={token}", soft_wrap=True)
        _serve(rt, sock, host)


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


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ") if at else "-"


@token_app.command("list")
def token_list() -> None:
    """List the tokens: id, role, when created and revoked, and who uses them. Never the token."""
    from tilfreds.operators.service import list_tokens

    rt = _runtime()
    with rt.db.read_only() as session:
        tokens = list_tokens(session)
    out.print(f"{'ID':>4}  {'ROLE':<6} {'CREATED':<18} {'REVOKED':<18} NAME", highlight=False)
    for t in tokens:
        out.print(
            f"{t.id:>4}  {t.role:<6} {_when(t.created_at):<18} {_when(t.revoked_at):<18} {t.name}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        int, typer.Argument(metavar="ID", help="The id `tilfreds token list` shows.")
    ],
) -> None:
    """Revoke a token: from now on every request with it gets 401. Audited."""
    from tilfreds.operators.service import revoke_token

    rt = _runtime()
    try:
        with rt.db.unit_of_work() as session:
            token, revoked = revoke_token(session, token_id=token_id, now=rt.clock.now())
    except TilfredsError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    state = "revoked" if revoked else f"was already revoked at {_when(token.revoked_at)}"
    out.print(f"token {token.id} ({token.name}) {state}", soft_wrap=True, markup=False)


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
