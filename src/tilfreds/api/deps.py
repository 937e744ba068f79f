"""What routes share: the runtime, and the operator behind a bearer token or console cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from tilfreds.operators import service as operators
from tilfreds.runtime import Runtime

SESSION_COOKIE = "tilfreds_session"
OPERATOR_STATE = "operator"  # where api.gate.BearerAuth leaves the operator in request.state

# Declares the scheme in OpenAPI (the "Authorize" button at /docs); api.gate.BearerAuth checks it.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    description="A token from `tilfreds token create`, sent as `Authorization: Bearer <token>`.",
    auto_error=False,
)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token from ``Authorization: Bearer``, else from the console's session cookie."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.cookies.get(SESSION_COOKIE)


def authenticate(rt: Runtime, token: str | None) -> operators.Operator:
    with rt.db.read_only() as session:
        return operators.authenticate(session, token)


def operator(
    request: Request,
    rt: Annotated[Runtime, Depends(runtime)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> operators.Operator:
    """The operator BearerAuth found before the body was read; a route outside its prefix
    looks the token up here instead (in FastAPI's worker thread, as this is a plain def)."""
    found = getattr(request.state, OPERATOR_STATE, None)
    if isinstance(found, operators.Operator):
        return found
    return authenticate(rt, bearer_token(request))


RuntimeDep = Annotated[Runtime, Depends(runtime)]
OperatorDep = Annotated[operators.Operator, Depends(operator)]
