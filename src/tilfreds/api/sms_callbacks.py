"""Where SMS providers call back over HTTP with delivery receipts and replies (P3, P7):
``/sms/{transport}/{kind}/{token}``. The configured transport authenticates and reads the call
(``Callbacks.parse_callback``); what it reports goes to the database through the runtime's
events sink. A refused call (403, 400) changes nothing; a call delivered again (providers retry
for hours) changes nothing the second time. Answers never repeat the input.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from tilfreds.api.deps import RuntimeDep
from tilfreds.api.error_responses import error_response
from tilfreds.sms.transport import (
    CALLBACK_KINDS,
    CallbackRefused,
    CallbackRequest,
    InboundSms,
    Receipt,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
_NOT_HERE = "there is no SMS callback at this address"
_REFUSED = {
    403: ("forbidden", "the callback is not authentic"),
    400: ("bad_request", "the callback could not be read"),
}


async def _body(request: Request) -> bytes:  # read within the body limit (api.gate.BodyLimit)
    return await request.body()


@router.api_route("/sms/{transport}/{kind}/{token}", methods=["GET", "POST"])
def sms_callback(
    *,
    transport: str,
    kind: str,
    token: str,
    request: Request,
    body: Annotated[bytes, Depends(_body)],
    rt: RuntimeDep,
) -> Response:
    """Receipts or replies from the configured transport's provider."""
    parse = getattr(rt.transport, "parse_callback", None)
    if transport != rt.transport.name or kind not in CALLBACK_KINDS or parse is None:
        return error_response(404, "not_found", _NOT_HERE)
    call = CallbackRequest(
        kind=kind,
        token=token,
        method=request.method,
        query=dict(request.query_params),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
    )
    try:
        reported: list[Receipt | InboundSms] = parse(call)
    except CallbackRefused as exc:
        status = exc.status if exc.status in _REFUSED else 400
        log.warning("SMS callback to %s/%s refused (%d): %s", transport, kind, status, exc)
        return error_response(status, *_REFUSED[status])
    except Exception:  # an adapter that cannot read what it was sent: the caller's input, no 500
        log.exception("SMS callback to %s/%s could not be read", transport, kind)
        return error_response(400, *_REFUSED[400])
    receipts = [item for item in reported if isinstance(item, Receipt)]
    inbound = [item for item in reported if isinstance(item, InboundSms)]
    events = rt.events
    events.receipts(receipts)
    events.inbound(inbound)
    return JSONResponse({"received": len(reported)})
