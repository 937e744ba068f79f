"""The Jinja2 environment and a helper to render a page in a given language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tilfreds.i18n import translator

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    # templates ship with the package: compiled once, never checked for changes on disk again
    # (a check is a stat() per template, extends and includes, on every page)
    auto_reload=False,
)


def page(
    request: Request, template: str, *, locale: str = "en", status_code: int = 200, **context: Any
) -> HTMLResponse:
    rt = request.app.state.runtime
    html = _env.get_template(template).render(
        _=translator(locale),
        lang=locale,
        settings=rt.settings,
        dev_phone=rt.dev_phone_enabled,
        request=request,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
