"""The web application: API, respondent pages, dev phone and console, with one error handler.

On the embedded default (SQLite) the send worker runs in-process, in a thread the app owns.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from tilfreds import __version__
from tilfreds.api import dev as dev_api
from tilfreds.api.routes import router as api_router
from tilfreds.errors import TilfredsError
from tilfreds.runtime import Runtime
from tilfreds.web import console, devphone, respondent
from tilfreds.web.headers import security_headers
from tilfreds.web.render import page
from tilfreds.worker import Worker


def _render_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TilfredsError)
    if request.url.path.startswith("/api/"):
        body = {"error": {"code": exc.code, "message": exc.message, **exc.details}}
        return JSONResponse(body, status_code=exc.http_status)
    return page(request, "error.html", message=exc.message, status_code=exc.http_status)


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
        description="Customer-satisfaction surveys over SMS.",
        docs_url=None,  # served below from the packaged Swagger UI: no CDN, works offline
        redoc_url=None,
    )
    app.middleware("http")(security_headers)
    app.state.runtime = rt
    app.add_exception_handler(TilfredsError, _render_error)
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static"
    )
    app.state.listen_host = listen_host
    app.include_router(api_router)
    app.include_router(dev_api.router)
    app.include_router(respondent.router)
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
