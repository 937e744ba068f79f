"""What the respondent's page modules share: reading a posted form off the event loop's way, and
the state pages (thanks, closed, expired, not a valid link)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from tilfreds.runtime import Runtime
from tilfreds.web import survey_view
from tilfreds.web.render import page


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields. Reading the body is the only async work; the route that
    uses it is a plain function, so its database work runs off the event loop."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def state_page(
    request: Request, *, locale: str, state: str, status_code: int, code: str = ""
) -> HTMLResponse:
    return page(
        request,
        "state.html",
        locale=locale,
        state=state,
        status_code=status_code,
        code=code,
        languages=survey_view.LANGUAGE_NAMES,
    )


def invalid_link(request: Request, rt: Runtime, lang: str | None = None) -> HTMLResponse:
    locale = survey_view.pick_locale(lang, rt.settings.default_locale)
    return state_page(request, locale=locale, state="invalid", status_code=404)
