"""``tilfreds keys``: the master keys that seal names and numbers: a new one, moving everything
to the current one (with a progress bar) while tilfreds serves, and what each key still holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tilfreds.errors import TilfredsError

keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


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

    from tilfreds.cli import _check_keys, _require_current_schema, _runtime
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
    from tilfreds.cli import _require_current_schema, _runtime
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
