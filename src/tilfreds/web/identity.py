"""The identity step before the survey (P2): shown by the survey's GET while the respondent is
unconfirmed (showing records nothing), answered by form POSTs (works without JavaScript). The
confirmation is kept on the invitation, so the answer form cannot skip it (``responses.submit``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from tilfreds.api.deps import RuntimeDep
from tilfreds.errors import InvalidInput, NotFound
from tilfreds.invitations import service as invitations
from tilfreds.responses import identity
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.web import survey_view
from tilfreds.web.pages import form_fields, invalid_link
from tilfreds.web.render import page

router = APIRouter(include_in_schema=False)


def identity_page(
    request: Request,
    rt: Runtime,
    step: identity.Step,
    *,
    code: str,
    locale: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The identity question, with what went wrong last (``wrong``, ``invalid``, ``expired``,
    ``locked``, ``refused``) said kindly."""
    minutes = 0
    if step.locked_until is not None:
        error = "locked"
        minutes = math.ceil((step.locked_until - rt.clock.now()).total_seconds() / 60)
    return page(
        request,
        "identity.html",
        locale=locale,
        code=code,
        step=step,
        channels=identity.CHANNELS,
        error=error,
        minutes=minutes,
        languages=survey_view.LANGUAGE_NAMES,
        status_code=status_code,
    )


def _again(code: str, locale: str) -> RedirectResponse:
    return RedirectResponse(f"/s/{code}?lang={locale}", status_code=303)


# what the page says after a POST that did not confirm, and with which status
_REFUSALS: tuple[tuple[type[Exception], str, int], ...] = (
    (identity.IdentityLocked, "locked", 429),
    (identity.CodeRefused, "refused", 429),
    (identity.CodeExpired, "expired", 409),
    (InvalidInput, "invalid", 422),
)
_NOT_CONFIRMED = {identity.Outcome.WRONG: ("wrong", 422), identity.Outcome.LOCKED: ("locked", 429)}
_REFUSED = tuple(kind for kind, _, _ in _REFUSALS)


def show_identity_step(
    request: Request,
    rt: Runtime,
    code: str,
    *,
    locale: str | None,
    said: tuple[str | None, int] = (None, 200),
) -> Response:
    """The identity page, read afresh (after a POST that did not confirm, with what went wrong);
    the survey once confirmed."""
    with rt.db.read_only() as session:
        found = invitations.find_invitation(session, code)
        shown = survey_view.pick_locale(locale, found.locale)
        if not identity.found_identity_pending(found):
            return _again(code, shown)
        step = identity.step(session, rt.keys, found, now=rt.clock.now())
    error, status_code = said
    return identity_page(
        request, rt, step, code=code, locale=shown, error=error, status_code=status_code
    )


def _refusal(exc: Exception) -> tuple[str, int]:
    return next((error, status) for kind, error, status in _REFUSALS if isinstance(exc, kind))


def _posted(
    request: Request,
    rt: Runtime,
    code: str,
    lang: str | None,
    act: Callable[[Session], identity.Outcome | None],
) -> Response:
    """Run one identity step in its own transaction, then go on to the survey (confirmed, or
    ended: its page says how) or show the step again with what went wrong."""
    try:
        with rt.db.unit_of_work() as session:
            outcome = act(session)
    except NotFound:
        return invalid_link(request, rt, lang)
    except (responses.AlreadyAnswered, responses.InvitationClosed):
        outcome = None  # the survey's page says how it ended
    except _REFUSED as exc:
        return show_identity_step(request, rt, code, locale=lang, said=_refusal(exc))
    if outcome in _NOT_CONFIRMED:
        return show_identity_step(request, rt, code, locale=lang, said=_NOT_CONFIRMED[outcome])
    return _again(code, survey_view.pick_locale(lang, rt.settings.default_locale))


@router.post("/s/{code}/identity", response_class=HTMLResponse)
def confirm_identity(
    code: str,
    request: Request,
    rt: RuntimeDep,
    form: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    """The answer to the identity question: right goes on to the survey, "no, not me" ends it
    as a wrong number (P17), wrong is counted and said, too many lock for a while."""
    return _posted(
        request,
        rt,
        code,
        form.get("lang"),
        lambda session: identity.answer(
            session, rt.keys, code=code, answer=form.get("answer", ""), now=rt.clock.now()
        ),
    )


@router.post("/s/{code}/identity/code", response_class=HTMLResponse)
def send_identity_code(
    code: str,
    request: Request,
    rt: RuntimeDep,
    form: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    """Send a code by SMS (only on this POST: a link scanner's GET sends nothing)."""
    lang = form.get("lang")

    def send(session: Session) -> None:
        found = invitations.find_invitation(session, code)
        identity.send_code(
            session,
            rt.keys,
            code=code,
            controller=rt.settings.controller_name,
            locale=survey_view.pick_locale(lang, found.locale),
            now=rt.clock.now(),
        )

    return _posted(request, rt, code, lang, send)
