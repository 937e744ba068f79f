"""``POST /api/v1/interactions`` taken straight off the app's router: the call every case system
makes for every interaction, so its well-formed requests skip FastAPI's included routers and
dependency solving (docs/benchmarks-history.md §1). Anything else (no operator, a body that is
not JSON or does not validate) goes on to the FastAPI route, which describes the API in OpenAPI
and answers those in the documented error shape; the work itself is the same function either
way."""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

from tilfreds.api.deps import OPERATOR_STATE
from tilfreds.invitations.schemas import InteractionPayload
from tilfreds.operators.service import Operator
from tilfreds.runtime import Runtime

Work = Callable[[InteractionPayload, Runtime, Operator], Response]


_PASSED = "tilfreds.intake_route.passed"  # scope key: the request goes on to the FastAPI route


def fast_route(path: str, work: Work) -> Route:
    """A plain ``POST path``, to be matched before the FastAPI route of the same path and method:
    ``work`` runs in the thread pool for a request FastAPI would have passed to it unchanged."""
    return _First(path, _Intake(work), methods=["POST"])


class _First(Route):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(_PASSED):  # handed on: the router's next match is the FastAPI route
            return Match.NONE, {}
        return super().matches(scope)


class _Intake:
    """An ASGI app: reads the body (the app's body limit and token check, both middleware, have
    run), validates it as FastAPI does (``json.loads``, then the model) and runs ``work`` in the
    thread pool; otherwise hands the request, its body replayed, back to the router."""

    def __init__(self, work: Work) -> None:
        self.work = work

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody to answer
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        payload = _payload(scope, body)
        operator = scope.get("state", {}).get(OPERATOR_STATE)
        if payload is None or not isinstance(operator, Operator):
            await scope["router"]({**scope, _PASSED: True}, _replay(body, receive), send)
            return
        rt: Runtime = scope["app"].state.runtime
        response = await run_in_threadpool(self.work, payload, rt, operator)
        await response(scope, receive, send)


def _payload(scope: Scope, body: bytes) -> InteractionPayload | None:
    """The payload, if the body is declared JSON, is JSON and validates; None: FastAPI says what
    is wrong with it."""
    declared = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if declared.split(b";")[0].strip().lower() != b"application/json":
        return None
    try:
        return InteractionPayload.model_validate(json.loads(body))
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are both
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read given again first."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: what the client sends next (a disconnect)

    return replayed
