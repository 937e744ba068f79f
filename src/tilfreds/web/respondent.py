"""The respondent's pages behind the short link. GET only shows (a link scanner spends nothing);
answers are stored on the answer POST, and "I don't want to answer" is its own POST (P8). A
survey that confirms identity shows its identity step first (``web/identity.py``, P2).

The page is rendered from the survey's newest version through the kinds' registry, in the language
asked for by the switcher (``?lang=``), else the person's, with fallback (``web/survey_view.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from tilfreds.errors import InvalidInput, NotFound
from tilfreds.invitations import service as invitations
from tilfreds.invitations.states import InvitationStatus
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.surveys.frozen import FrozenVersion
from tilfreds.web import survey_view
from tilfreds.web.identity import show_identity_step
from tilfreds.web.pages import form_post, invalid_link, state_page
from tilfreds.web.render import blank_survey_page, page


def _survey_page_again(
    request: Request,
    rt: Runtime,
    code: str,
    published: FrozenVersion,
    *,
    locale: str,
    values: dict[str, str],
    error: str | None,
) -> HTMLResponse:
    """The survey page once more, with what was answered and which question to look at."""
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
        status_code=422,
    )


def _asked(request: Request) -> tuple[str, str | None, Runtime]:
    """The link's code, the language asked for (``?lang=``) and the runtime."""
    rt: Runtime = request.app.state.runtime
    return request.path_params["code"], request.query_params.get("lang"), rt


def _closed_state(link: invitations.Link) -> tuple[str, int]:
    if link.status == InvitationStatus.ANSWERED:
        return "answered", 200
    if link.wrong_number_at is not None:
        return "wrong_number", 200  # "that is not me" (P17)
    if link.status == InvitationStatus.DECLINED:
        return "declined", 200
    return "expired", 410


def _newest(link: invitations.Link) -> FrozenVersion:
    if link.latest is None:
        raise NotFound("this survey has no published version", field="survey")
    return link.latest


def show_survey(request: Request) -> Response:
    code, lang, rt = _asked(request)
    # one statement, no transaction around it
    with rt.db.one_read() as session:
        try:
            link = invitations.find_link(session, code)
        except NotFound:
            return invalid_link(request, rt, lang)
        locale = survey_view.pick_locale(lang, link.locale)
        try:
            responses.ensure_open(link, now=rt.clock.now())
        except (responses.AlreadyAnswered, responses.InvitationClosed):
            state, status = _closed_state(link)
            return state_page(request, locale=locale, state=state, status_code=status, code=code)
        published = _newest(link)
    if responses.link_identity_pending(link):  # P2: who they are first; showing records nothing
        return show_identity_step(request, rt, code, locale=locale)
    return blank_survey_page(published, code=code, locale=locale, settings=rt.settings)


def _again(code: str, locale: str, page_name: str = "") -> RedirectResponse:
    return RedirectResponse(f"/s/{code}{page_name}?lang={locale}", status_code=303)


def submit_survey(request: Request, form: dict[str, str]) -> Response:
    code, _, rt = _asked(request)
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
        return invalid_link(request, rt, lang)
    except (responses.AlreadyAnswered, responses.InvitationClosed, responses.IdentityRequired):
        return _again(code, survey_view.pick_locale(lang, rt.settings.default_locale))
    except InvalidInput as exc:
        with rt.db.one_read() as session:
            link = invitations.find_link(session, code)
            published = _newest(link)
        return _survey_page_again(
            request,
            rt,
            code,
            published,
            locale=survey_view.pick_locale(lang, link.locale),
            values=form,
            error=exc.details.get("field"),
        )
    return _again(code, locale, "/thanks")


def decline_survey(request: Request, form: dict[str, str]) -> Response:
    """ "I don't want to answer": ends the survey and every reminder for it (P8)."""
    code, _, rt = _asked(request)
    lang = survey_view.pick_locale(form.get("lang"), rt.settings.default_locale)
    try:
        with rt.db.unit_of_work() as session:
            responses.decline(session, code=code, now=rt.clock.now())
    except NotFound:
        return invalid_link(request, rt, lang)
    except (responses.AlreadyAnswered, responses.InvitationClosed):
        pass  # already closed: the page says how
    return _again(code, lang)


def thanks(request: Request) -> Response:
    code, lang, rt = _asked(request)
    with rt.db.one_read() as session:
        try:
            link = invitations.find_link(session, code)
        except NotFound:
            return invalid_link(request, rt, lang)
    if link.status != InvitationStatus.ANSWERED:
        return RedirectResponse(f"/s/{code}", status_code=303)
    locale = survey_view.pick_locale(lang, link.locale)
    return state_page(request, locale=locale, state="thanks", status_code=200, code=code)


# Plain Starlette routes, not FastAPI's: these are the pages every respondent hits, and FastAPI's
# dependency solving and its included routers' matching were an eighth of a page's server time.
# Database work runs in the thread pool (a ``def`` endpoint, or ``form_post`` once the form is
# read), never on the event loop.
ROUTES = [
    Route("/s/{code}", show_survey, methods=["GET"]),
    Route("/s/{code}", form_post(submit_survey), methods=["POST"]),
    Route("/s/{code}/decline", form_post(decline_survey), methods=["POST"]),
    Route("/s/{code}/thanks", thanks, methods=["GET"]),
]
