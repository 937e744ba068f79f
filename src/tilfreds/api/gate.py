"""What a request passes before any route reads it: the body size limit and the bearer token check.

Both are pure ASGI middleware, so a request refused for its size or its token is refused before
its body is read (one unauthenticated 1 GB upload once took 3 GB of memory).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tilfreds.api.deps import OPERATOR_STATE, bearer_token
from tilfreds.api.error_responses import domain_error, error_response
from tilfreds.errors import TilfredsError, Unauthorized
from tilfreds.operators.service import Operator

GUARDED_PREFIX = "/api/v1/"
OWN_AUTH_PREFIXES = ("/api/v1/dev/",)  # the dev phone API decides its own access


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; an HTTPException, so FastAPI
    hands it on unchanged and the one HTTP error handler renders it (JSON under /api/)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may be at most {limit} bytes")


class BodyLimit:
    """Refuses a declared Content-Length over ``max_bytes`` at once, and cuts off a body (chunked
    or lying about its length) as soon as the bytes received pass it."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # path -> its own limit (a batch of interactions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            exc = BodyTooLarge(limit)
            await _refusal(scope, exc.status_code, "payload_too_large", exc.detail)(
                scope, receive, send
            )
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class BearerAuth:
    """Authenticates ``/api/v1/*`` requests from their bearer token before the route runs and
    leaves the operator in ``request.state``; ``authenticate`` (a database lookup) runs in a
    worker thread, never on the event loop."""

    def __init__(self, app: ASGIApp, *, authenticate: Callable[[str | None], Operator]) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(GUARDED_PREFIX)
            or path.startswith(OWN_AUTH_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(HTTPConnection(scope))
        try:
            operator = await anyio.to_thread.run_sync(self.authenticate, token)
        except TilfredsError as exc:  # Unauthorized or Forbidden: the body stays unread
            challenge = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
            await domain_error(exc, headers=challenge)(scope, receive, send)
            return
        scope.setdefault("state", {})[OPERATOR_STATE] = operator
        await self.app(scope, receive, send)


def _refusal(scope: Scope, status: int, code: str, message: str) -> Response:
    if scope.get("path", "").startswith(("/api/", "/sms/")):
        return error_response(status, code, message)
    return PlainTextResponse(message, status_code=status)
