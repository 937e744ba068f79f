"""``tilfreds sms``: check the SMS transport's set-up (one test message, step by step) and print
the callback URLs to give the provider (P3; the provider is shown for P13/P14)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tilfreds.errors import TilfredsError

sms_app = typer.Typer(help="The SMS transport.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


@sms_app.command("test")
def sms_test(
    to: Annotated[str, typer.Option(help="The mobile number to send to.")],
    text: Annotated[str, typer.Option(help="The text.")] = "tilfreds: test message, æøå",
    wait: Annotated[float, typer.Option(help="Seconds to wait for the receipt; 0: none.")] = 60,
) -> None:
    """Send one SMS through the configured transport, showing each step (start, submit with the
    provider's ids, the receipt); exit 1 if a step fails."""
    from tilfreds.cli import _prepare_schema, _runtime
    from tilfreds.people.phones import normalise_phone
    from tilfreds.sms_check import send_test

    rt = _runtime()
    _prepare_schema(rt)
    try:
        number = normalise_phone(to, region=rt.settings.default_region)
    except TilfredsError as exc:
        console.print(f"[red]--to:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if not send_test(rt, to=number, text=text, wait_seconds=wait, say=_say):
        raise typer.Exit(1)


def _say(line: str) -> None:
    out.print(line, soft_wrap=True, markup=False, highlight=False)


@sms_app.command("callbacks")
def sms_callbacks() -> None:
    """Print the callback URLs to give the provider (receipts, replies); they hold a secret."""
    from tilfreds.cli import _runtime
    from tilfreds.sms_check import callback_urls

    rt = _runtime()
    urls = callback_urls(rt)
    if urls is None:
        _say(f"the {rt.transport.name} transport takes no HTTP callbacks")
        return
    for kind, url in urls.items():
        _say(f"{kind}: {url}")
