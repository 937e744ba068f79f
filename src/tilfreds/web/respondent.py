"""The respondent's pages behind the short link. GET only shows; the answer is spent on POST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tilfreds.api.deps import RuntimeDep
from tilfreds.errors import InvalidInput, NotFound
from tilfreds.invitations import service as invitations
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.web.render import page

router = APIRouter(include_in_schema=False)

_SCALE = (1, 2, 3, 4, 5)


def _state_page(request: Request, *, locale: str, state: str, status_code: int) -> HTMLResponse:
    return page(request, "state.html", locale=locale, state=state, status_code=status_code)


def _invalid_link(request: Request, rt: Runtime) -> HTMLResponse:
    return _state_page(request, locale=rt.settings.default_locale, state="invalid", status_code=404)


def _survey_page(
    request: Request,
    found: invitations.OpenInvitation,
    *,
    values: dict[str, str],
    error: str | None,
    status_code: int,
) -> HTMLResponse:
    return page(
        request,
        "survey.html",
        locale=found.locale,
        code=found.invitation.code,
        questions=list(found.survey.questions),
        scale=_SCALE,
        values=values,
        error=error,
        status_code=status_code,
    )


@router.get("/s/{code}", response_class=HTMLResponse)
def show_survey(code: str, request: Request, rt: RuntimeDep) -> Response:
    with rt.db.read_only() as session:
        try:
            found = invitations.find_invitation(session, code)
        except NotFound:
            return _invalid_link(request, rt)
        try:
            responses.ensure_open(found.invitation, now=rt.clock.now())
        except responses.AlreadyAnswered:
            return _state_page(request, locale=found.locale, state="answered", status_code=200)
        except responses.InvitationClosed:
            return _state_page(request, locale=found.locale, state="expired", status_code=410)
        return _survey_page(request, found, values={}, error=None, status_code=200)


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields. Reading the body is the only async work; the route that
    uses it is a plain function, so its database work runs off the event loop."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/s/{code}", response_class=HTMLResponse)
def submit_survey(
    code: str,
    request: Request,
    rt: RuntimeDep,
    form: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    try:
        with rt.db.unit_of_work() as session:
            responses.submit(session, code=code, form=form, now=rt.clock.now())
    except NotFound:
        return _invalid_link(request, rt)
    except (responses.AlreadyAnswered, responses.InvitationClosed):
        return RedirectResponse(f"/s/{code}", status_code=303)
    except InvalidInput as exc:
        with rt.db.read_only() as session:
            found = invitations.find_invitation(session, code)
            return _survey_page(
                request, found, values=form, error=exc.details.get("field"), status_code=422
            )
    return RedirectResponse(f"/s/{code}/thanks", status_code=303)


@router.get("/s/{code}/thanks", response_class=HTMLResponse)
def thanks(code: str, request: Request, rt: RuntimeDep) -> Response:
    with rt.db.read_only() as session:
        try:
            found = invitations.find_invitation(session, code)
        except NotFound:
            return _invalid_link(request, rt)
    if found.invitation.status != "answered":
        return RedirectResponse(f"/s/{code}", status_code=303)
    return _state_page(request, locale=found.locale, state="thanks", status_code=200)
