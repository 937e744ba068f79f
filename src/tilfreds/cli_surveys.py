"""``tilfreds survey``: publish a survey from YAML and show a survey's newest version as YAML.

Loading checks the SMS texts (P3 cost, P7 how to object) and prints what each costs; loading the
same file again publishes nothing new, and a changed file a new version (P4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tilfreds.errors import TilfredsError

survey_app = typer.Typer(help="Surveys as data (YAML).", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


@survey_app.command("load")
def survey_load(
    file: Annotated[Path, typer.Argument(help="The survey's YAML file.", exists=True)],
    allow_long: Annotated[
        bool, typer.Option(help="Accept a Norwegian invitation longer than one SMS segment.")
    ] = False,
) -> None:
    """Create the survey, or publish a new version of it if the file changed."""
    from tilfreds.cli import _runtime
    from tilfreds.surveys import service as surveys

    rt = _runtime()
    try:
        definition = surveys.read_yaml(file.read_text("utf-8"))
        with rt.db.unit_of_work() as session:
            published, reports = surveys.save(
                session,
                definition,
                controller=rt.settings.controller_name,
                public_url=rt.settings.public_url,
                allow_long=allow_long,
                now=rt.clock.now(),
                actor="cli",
            )
            number = published.number
    except TilfredsError as exc:
        console.print(f"[red]{exc.message}[/red]", soft_wrap=True, markup=False)
        raise typer.Exit(2) from exc
    for r in reports:
        out.print(f"sms {r.purpose} {r.locale}: {r.segments} segment(s), {r.encoding}, {r.units}")
    out.print(f"survey {definition.slug} is at version {number}")


@survey_app.command("show")
def survey_show(slug: Annotated[str, typer.Argument(help="The survey's slug.")]) -> None:
    """Print the survey's newest version as YAML (loadable again)."""
    from tilfreds.cli import _runtime
    from tilfreds.surveys import service as surveys

    rt = _runtime()
    try:
        with rt.db.read_only() as session:
            published = surveys.by_slug(session, slug)
    except TilfredsError as exc:
        console.print(exc.message, markup=False)
        raise typer.Exit(2) from exc
    out.print(f"# version {published.number}", markup=False)
    out.print(surveys.to_yaml(published.definition), markup=False, soft_wrap=True, end="")
