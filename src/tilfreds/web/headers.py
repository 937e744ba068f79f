"""Security headers for every response: no referrer (survey links carry a personal code), no
framing, no sniffing, a strict content policy for our pages, and no caching of survey pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI starts itself with an inline script; it gets a policy that allows that one page.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    path = request.url.path
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = DOCS_CSP if path == "/docs" else CSP
    if path.startswith("/s/") or path.startswith("/dev/") or path == "/dashboard":
        response.headers["Cache-Control"] = "no-store"
    return response
