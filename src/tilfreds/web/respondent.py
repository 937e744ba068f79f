"""The respondent's pages behind the short link. GET only shows (a link scanner spends nothing);
answers are stored on the answer POST, and "I don't want to answer" is its own POST (P8).

The page is rendered from the survey's newest version through the kinds' registry, in the language
asked for by the switcher (``?lang=``), else the person's, with fallback (``web/survey_view.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tilfreds.api.deps import RuntimeDep
from tilfreds.errors import InvalidInput, NotFound
from tilfreds.invitations import service as invitations
from tilfreds.invitations.states import InvitationStatus
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.surveys.frozen import FrozenVersion
from tilfreds.web import survey_view
from tilfreds.web.render import page

router = APIRouter(include_in_schema=False)


def _state_page(
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


def _invalid_link(request: Request, rt: Runtime, lang: str | None = None) -> HTMLResponse:
    locale = survey_view.pick_locale(lang, rt.settings.default_locale)
    return _state_page(request, locale=locale, state="invalid", status_code=404)


def _survey_page(
    request: Request,
    rt: Runtime,
    code: str,
    published: FrozenVersion,
    *,
    locale: str,
    values: dict[str, str],
    error: str | None,
    status_code: int,
) -> HTMLResponse:
    view = survey_view.shown(published, locale, controller=rt.settings.controller_name)
    return page(
        request,
        "survey.html",
        locale=locale,
        code=code,
        version=published.version_id,
        view=view,
        languages=survey_view.LANGUAGE_NAMES,
        values=values,
        error=error,
        status_code=status_code,
    )


def _closed_state(link: invitations.Link) -> tuple[str, int]:
    if link.status == InvitationStatus.ANSWERED:
        return "answered", 200
    if link.status == InvitationStatus.DECLINED:
        return "declined", 200
    return "expired", 410


def _newest(link: invitations.Link) -> FrozenVersion:
    if link.latest is None:
        raise NotFound("this survey has no published version", field="survey")
    return link.latest


@router.get("/s/{code}", response_class=HTMLResponse)
def show_survey(code: str, request: Request, rt: RuntimeDep, lang: str | None = None) -> Response:
    # one statement, no transaction around it
    with rt.db.one_read() as session:
        try:
            link = invitations.find_link(session, code)
        except NotFound:
            return _invalid_link(request, rt, lang)
        locale = survey_view.pick_locale(lang, link.locale)
        try:
            responses.ensure_open(link, now=rt.clock.now())
        except (responses.AlreadyAnswered, responses.InvitationClosed):
            state, status = _closed_state(link)
            return _state_page(request, locale=locale, state=state, status_code=status, code=code)
        published = _newest(link)
    return _survey_page(
        request, rt, code, published, locale=locale, values={}, error=None, status_code=200
    )


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields. Reading the body is the only async work; the route that
    uses it is a plain function, so its database work runs off the event loop."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def _again(code: str, locale: str, page_name: str = "") -> RedirectResponse:
    return RedirectResponse(f"/s/{code}{page_name}?lang={locale}", status_code=303)


@router.post("/s/{code}", response_class=HTMLResponse)
def submit_survey(
    code: str,
    request: Request,
    rt: RuntimeDep,
    form: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    lang = form.get("lang")
    try:
        with rt.db.unit_of_work() as session:
            response = responses.submit(
                session,
                code=code,
                form=form,
                now=rt.clock.now(),
                notice_version=rt.settings.notice_version,
            )
            locale = response.locale
    except NotFound:
        return _invalid_link(request, rt, lang)
    except (responses.AlreadyAnswered, responses.InvitationClosed):
        return _again(code, survey_view.pick_locale(lang, rt.settings.default_locale))
    except InvalidInput as exc:
        with rt.db.one_read() as session:
            link = invitations.find_link(session, code)
            published = _newest(link)
        return _survey_page(
            request,
            rt,
            code,
            published,
            locale=survey_view.pick_locale(lang, link.locale),
            values=form,
            error=exc.details.get("field"),
            status_code=422,
        )
    return _again(code, locale, "/thanks")


@router.post("/s/{code}/decline", response_class=HTMLResponse)
def decline_survey(
    code: str,
    request: Request,
    rt: RuntimeDep,
    form: Annotated[dict[str, str], Depends(form_fields)],
) -> Response:
    """ "I don't want to answer": ends the survey and every reminder for it (P8)."""
    lang = survey_view.pick_locale(form.get("lang"), rt.settings.default_locale)
    try:
        with rt.db.unit_of_work() as session:
            responses.decline(session, code=code, now=rt.clock.now())
    except NotFound:
        return _invalid_link(request, rt, lang)
    except (responses.AlreadyAnswered, responses.InvitationClosed):
        pass  # already closed: the page says how
    return _again(code, lang)


@router.get("/s/{code}/thanks", response_class=HTMLResponse)
def thanks(code: str, request: Request, rt: RuntimeDep, lang: str | None = None) -> Response:
    with rt.db.one_read() as session:
        try:
            link = invitations.find_link(session, code)
        except NotFound:
            return _invalid_link(request, rt, lang)
    if link.status != InvitationStatus.ANSWERED:
        return RedirectResponse(f"/s/{code}", status_code=303)
    locale = survey_view.pick_locale(lang, link.locale)
    return _state_page(request, locale=locale, state="thanks", status_code=200, code=code)
