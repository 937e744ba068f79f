"""``/api/v1/dev``: both ends of the dev phone, and who may use it: a browser on this machine when
the server listens on loopback only, or an operator with a token. Otherwise the API answers 401,
the pages 404; without the dev transport both answer 404."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tilfreds.api.deps import SESSION_COOKIE, RuntimeDep
from tilfreds.api.error_responses import responses
from tilfreds.errors import Forbidden, NotFound, Unauthorized
from tilfreds.fields import Line, Text
from tilfreds.invitations import inbound
from tilfreds.operators import service as operators
from tilfreds.people.phones import normalise_phone
from tilfreds.runtime import Runtime
from tilfreds.sms import dev

# How a request may use the dev phone: an operator token in the Authorization header (no browser
# sends that across sites), the console session cookie, or a local browser on a loopback bind.
Access = Literal["header", "cookie", "local"]
_FORWARDED = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def is_loopback(host: str | None) -> bool:
    """Whether an address or host name means this machine only: 127.0.0.0/8, ::1, localhost."""
    name = (host or "").strip().removeprefix("[").removesuffix("]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _host_name(value: str) -> str | None:
    try:
        return urlsplit(f"//{value}").hostname
    except ValueError:  # a malformed port or bracket
        return None


def _is_local(request: Request) -> bool:
    """Listening on loopback only (as ``serve`` was started, whatever the request claims), and
    asked for a loopback name (a DNS-rebinding page would name its own domain) by no proxy (a
    proxy on this machine would carry the whole world in)."""
    return (
        is_loopback(request.app.state.listen_host)
        and is_loopback(_host_name(request.headers.get("host", "")))
        and not any(header in request.headers for header in _FORWARDED)
    )


def _is_operator(rt: Runtime, token: str | None) -> bool:
    if not token:
        return False
    try:
        with rt.db.read_only() as session:
            operators.authenticate(session, token)
    except (Unauthorized, Forbidden):
        return False
    return True


def dev_phone_access(request: Request, rt: Runtime) -> Access | None:
    """How this request may use the dev phone, or None when it may not."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _is_operator(rt, value.strip()):
        return "header"
    if _is_local(request):
        return "local"
    if _is_operator(rt, request.cookies.get(SESSION_COOKIE)):
        return "cookie"
    return None


def is_cross_site(request: Request) -> bool:
    """The browser says this request was sent by another site, or another origin on this site
    (another port on localhost is "same-site", and may be anybody's dev server)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    # Our pages say Referrer-Policy: no-referrer, so the browser posts their forms with Origin
    # "null": that says nothing, and the form token decides.
    if origin is None or origin == "null":
        return False
    try:
        return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()
    except ValueError:
        return True


def _require_dev(request: Request, rt: RuntimeDep) -> None:
    if not rt.dev_phone_enabled:
        raise NotFound("the dev SMS transport is not configured")
    if dev_phone_access(request, rt) is None:
        raise Unauthorized(
            "the dev phone answers on a loopback address, or to an operator's bearer token"
        )


router = APIRouter(prefix="/api/v1/dev", tags=["dev"], dependencies=[Depends(_require_dev)])


class OutboxItem(BaseModel):
    id: int
    direction: str
    to: str
    sender: str
    text: str
    reference: str
    at: str


@router.get(
    "/outbox",
    response_model=list[OutboxItem],
    summary="Messages on the dev phone",
    responses=responses(401, 404),
)
def dev_outbox(rt: RuntimeDep) -> list[OutboxItem]:
    """Messages on the simulated phone, newest first (dev transport only)."""
    with rt.db.read_only() as session:
        return [
            OutboxItem(
                id=m.id,
                direction=m.direction,
                to=m.phone,
                sender=m.sender,
                text=m.body,
                reference=m.reference,
                at=m.at.isoformat(),
            )
            for m in dev.inbox(session, rt.keys)
        ]


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: Line = Field(alias="from", min_length=3, max_length=32)
    text: Text = Field(max_length=1600)


class InboundOut(BaseModel):
    """What the reply was taken as: "objection" or "reply". Not how many invitations it closed,
    nor how a two-way survey took it: that would tell anyone who can post here whether a number
    has open invitations (the dev phone shows what was sent back)."""

    outcome: str


@router.post(
    "/inbound",
    response_model=InboundOut,
    summary="Reply from the dev phone",
    responses=responses(401, 403, 404, 413, 422),
)
def dev_inbound(payload: InboundIn, request: Request, rt: RuntimeDep) -> InboundOut:
    """Play a reply typed on the customer's phone (dev transport only)."""
    if is_cross_site(request):
        raise Forbidden("the dev phone takes replies from its own pages only")
    phone = normalise_phone(payload.sender, region=rt.settings.default_region)
    now = rt.clock.now()
    with rt.db.unit_of_work() as session:
        outcome = inbound.receive_dev_reply(
            session,
            rt.keys,
            phone_e164=phone,
            our_number=rt.settings.sms_sender,
            text=payload.text,
            now=now,
            replies=rt.reply_context(),
        )
    return InboundOut(outcome="objection" if outcome.kind == "objection" else "reply")
