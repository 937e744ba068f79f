"""What the respondent's page modules share: reading a posted form off the event loop's way, and
the state pages (thanks, closed, expired, not a valid link)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tilfreds.runtime import Runtime
from tilfreds.web import survey_view
from tilfreds.web.render import page


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields. Reading the body is the only async work; the route that
    uses it is a plain function, so its database work runs off the event loop."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def form_post(
    handle: Callable[[Request, dict[str, str]], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """A plain Starlette endpoint for a form POST: the body read on the event loop (the only
    async work), then ``handle(request, form)`` in the thread pool, where database work runs."""

    @wraps(handle)
    async def endpoint(request: Request) -> Response:
        form = await form_fields(request)
        return await run_in_threadpool(handle, request, form)

    return endpoint


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
