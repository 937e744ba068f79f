"""What routes share: the runtime, and the operator behind a bearer token or console cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tilfreds.operators import service as operators
from tilfreds.runtime import Runtime

SESSION_COOKIE = "tilfreds_session"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def operator(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> operators.Operator:
    with rt.db.read_only() as session:
        return operators.authenticate(session, bearer_token(request))


RuntimeDep = Annotated[Runtime, Depends(runtime)]
OperatorDep = Annotated[operators.Operator, Depends(operator)]
