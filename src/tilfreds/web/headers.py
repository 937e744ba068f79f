"""Security headers for every response: no referrer (survey links carry a personal code), no
framing, no sniffing, a strict content policy for our pages, and no caching of survey pages."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Swagger UI starts itself with an inline script; it gets a policy that allows that one page.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)


_RawHeaders = list[tuple[bytes, bytes]]


def _raw(policy: str, *, no_store: bool) -> _RawHeaders:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", policy.encode("latin-1")),
    ]
    return [*headers, (b"cache-control", b"no-store")] if no_store else headers


# built once: setting five headers one by one through MutableHeaders was a tenth of a survey
# page's server time
_HEADERS = {
    (policy, no_store): _raw(policy, no_store=no_store)
    for policy in (CSP, DOCS_CSP)
    for no_store in (False, True)
}
# the names each set replaces: a response's own Cache-Control stays unless no-store is required
_REPLACED = {
    no_store: frozenset(name for name, _ in _HEADERS[CSP, no_store]) for no_store in (False, True)
}


class SecurityHeaders:
    """Pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per
    request, on every API call): sets the headers as the response starts, in place of any of
    the same name the response has (a response's own Cache-Control stays where no-store is not
    required)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        no_store = path.startswith(("/s/", "/dev/")) or path == "/dashboard"
        ours = _HEADERS[DOCS_CSP if path == "/docs" else CSP, no_store]
        replaced = _REPLACED[no_store]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in replaced]
                message["headers"] = kept + ours
            await send(message)

        await self.app(scope, receive, with_headers)
