"""What routes share: the runtime, and the operator behind a bearer token or console cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from tilfreds.errors import Unauthorized
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


async def runtime(request: Request) -> Runtime:  # no I/O: a sync one would cost a thread hop
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
    return operators.authenticate_alone(rt.db, token)


async def operator(  # no I/O: not worth a worker thread
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> operators.Operator:
    """The operator api.gate.BearerAuth authenticated before the body was read (it guards
    /api/v1 but the dev phone's routes); no second database lookup."""
    found = getattr(request.state, OPERATOR_STATE, None)
    if not isinstance(found, operators.Operator):
        raise Unauthorized("a bearer token is required")
    return found


RuntimeDep = Annotated[Runtime, Depends(runtime)]
OperatorDep = Annotated[operators.Operator, Depends(operator)]
