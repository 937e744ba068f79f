"""The Jinja2 environment and a helper to render a page in a given language."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from tilfreds.config import Settings
from tilfreds.i18n import translator
from tilfreds.surveys.frozen import FrozenVersion
from tilfreds.web import survey_view

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


@dataclass(frozen=True)
class Site:
    """The settings the survey page shows (its header and privacy footer): what its cached
    rendering depends on besides the version and the language."""

    controller_name: str
    controller_org_no: str
    notice_url: str
    dpo_email: str

    @classmethod
    def of(cls, settings: Settings) -> Site:
        return cls(
            settings.controller_name,
            settings.controller_org_no,
            settings.notice_url,
            settings.dpo_email,
        )


# Where the link's code goes in the once-rendered page: a tag, so no text the page shows can be
# taken for it (autoescaping writes every "<" of a text as "&lt;"; only the template's own markup
# and this placeholder reach the page raw).
_CODE = Markup("<tilfreds-code>")


@lru_cache(maxsize=512)
def _blank_survey(published: FrozenVersion, locale: str, site: Site) -> tuple[str, ...]:
    """The unanswered survey page of a version in a language, rendered once per process (a
    published version never changes), cut where the link's code goes."""
    html = _env.get_template("survey.html").render(
        _=translator(locale),
        lang=locale,
        settings=site,
        code=_CODE,
        version=published.version_id,
        view=survey_view.shown(published, locale, controller=site.controller_name),
        languages=survey_view.LANGUAGE_NAMES,
        values={},
        error=None,
    )
    return tuple(html.split(_CODE))


def blank_survey_page(
    published: FrozenVersion, *, code: str, locale: str, settings: Settings
) -> HTMLResponse:
    """The survey page as ``survey.html`` renders it with nothing answered yet: the rendering
    of its version and language with this link's code (escaped) put in."""
    parts = _blank_survey(published, locale, Site.of(settings))
    return HTMLResponse(str(escape(code)).join(parts))
