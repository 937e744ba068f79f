"""The web application: API, respondent pages, dev phone and console, with one error handler
per kind of error (JSON in the documented shape under /api/, a page elsewhere).

On the embedded default (SQLite) the send worker runs in-process, in a thread the app owns.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

from tilfreds import __version__
from tilfreds.api import deps, intake_route, sms_callbacks
from tilfreds.api import dev as dev_api
from tilfreds.api import error_responses as api_errors
from tilfreds.api import routes as api_routes
from tilfreds.api.gate import BearerAuth, BodyLimit
from tilfreds.api.routes import BATCH_PATH, INTAKE
from tilfreds.api.routes import router as api_router
from tilfreds.errors import TilfredsError
from tilfreds.runtime import Runtime
from tilfreds.web import console, devphone, identity, opened, respondent
from tilfreds.web.headers import SecurityHeaders
from tilfreds.web.render import page
from tilfreds.worker import Worker

TAGS = [
    {"name": "interactions", "description": "Tell tilfreds about a customer's interaction."},
    {"name": "surveys", "description": "The surveys an interaction can be sent."},
    {"name": "reports", "description": "Aggregates; small groups are hidden."},
    {"name": "dev", "description": "Both ends of the simulated phone (dev transport only)."},
]


def _is_api(request: Request) -> bool:
    """Answered in the API's JSON error shape: the API, and the SMS providers' callbacks."""
    path = request.url.path
    return path == "/api" or path.startswith(("/api/", "/sms/"))


def _render_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TilfredsError)
    if _is_api(request):
        return api_errors.domain_error(exc)
    return page(request, "error.html", message=exc.message, status_code=exc.http_status)


def _render_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_api(request):
        return api_errors.http_error(exc)
    if exc.status_code == 404:
        return page(request, "not_found.html", status_code=404)
    message = HTTPStatus(exc.status_code).phrase
    response = page(request, "error.html", message=message, status_code=exc.status_code)
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return response


def _render_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _is_api(request):
        return api_errors.validation_error(exc)
    return page(request, "error.html", message="The form could not be read.", status_code=422)


def create_app(rt: Runtime, *, run_worker: bool = False, listen_host: str | None = None) -> FastAPI:
    """``listen_host`` is the address the server was started on: the dev phone answers without a
    token only when it is loopback (None: unknown, so it never does)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if run_worker:
            worker = Worker(rt)
            thread = threading.Thread(
                target=worker.run, args=(stop,), name="tilfreds-worker", daemon=True
            )
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    app = FastAPI(
        title="tilfreds",
        version=__version__,
        lifespan=lifespan,
        description="Customer-satisfaction surveys over SMS. Authorize with a bearer token from "
        '`tilfreds token create`; errors are `{"error": {"code", "message", "field"}}`.',
        openapi_tags=TAGS,
        docs_url=None,  # served below from the packaged Swagger UI: no CDN, works offline
        redoc_url=None,
    )
    # the last added runs first: security headers on every answer, then the size limit, then
    # the token check, all before any route reads the body
    app.add_middleware(BearerAuth, authenticate=partial(deps.authenticate, rt))
    app.add_middleware(
        BodyLimit,
        max_bytes=rt.settings.max_body_bytes,
        larger={BATCH_PATH: rt.settings.max_batch_body_bytes},
    )
    app.add_middleware(SecurityHeaders)
    app.state.runtime = rt
    app.add_exception_handler(TilfredsError, _render_error)
    app.add_exception_handler(HTTPException, _render_http_error)
    app.add_exception_handler(RequestValidationError, _render_invalid_request)
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static"
    )
    app.state.listen_host = listen_host
    app.router.routes.extend(respondent.ROUTES)  # first: matched before the routers below
    app.include_router(api_router)
    # the intake's plain route first, in front of its FastAPI route (which it falls back to)
    app.router.routes.insert(0, intake_route.fast_route(INTAKE, api_routes.receive_one))
    app.include_router(dev_api.router)
    app.include_router(sms_callbacks.router)
    app.include_router(identity.router)
    app.include_router(opened.router)
    app.include_router(console.router)
    app.include_router(devphone.router)

    app.mount("/vendor/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="tilfreds API",
            swagger_js_url="/vendor/swagger/swagger-ui-bundle.js",
            swagger_css_url="/vendor/swagger/swagger-ui.css",
            swagger_favicon_url="/vendor/swagger/favicon-32x32.png",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
