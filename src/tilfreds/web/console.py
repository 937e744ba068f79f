"""The operator console: sign in with a token, see the dashboard. Roles and views come later."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tilfreds.api.deps import SESSION_COOKIE, RuntimeDep, bearer_token
from tilfreds.errors import Unauthorized
from tilfreds.invitations import funnel
from tilfreds.operators import service as operators
from tilfreds.reporting import service as reporting
from tilfreds.surveys import service as surveys
from tilfreds.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return page(request, "home.html")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return page(request, "login.html", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, rt: RuntimeDep, token: Annotated[str, Form()] = "") -> Response:
    token = token.strip()
    try:
        with rt.db.read_only() as session:
            operators.authenticate(session, token)
    except Unauthorized as exc:
        return page(request, "login.html", error=exc.message, status_code=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=rt.settings.public_url.startswith("https://"),
        max_age=8 * 3600,
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, rt: RuntimeDep) -> Response:
    try:
        with rt.db.read_only() as session:
            operator = operators.authenticate(session, bearer_token(request))
            summary = reporting.summary(session)
            funnels = funnel.funnel(session)
            names = {s.id: s.name for s in surveys.list_surveys(session)}
    except Unauthorized:
        return RedirectResponse("/login", status_code=303)
    return page(
        request,
        "dashboard.html",
        operator=operator,
        summary=summary,
        funnels=funnels,
        survey_names=names,
    )
