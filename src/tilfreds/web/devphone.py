"""The dev phone: the simulated handset's messages, links clickable, and a box to reply from.
Only for whom ``api.dev.dev_phone_access`` lets in; anyone else gets the 404 of a missing page."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from tilfreds.api.deps import RuntimeDep
from tilfreds.api.dev import Access, dev_phone_access, is_cross_site
from tilfreds.errors import Forbidden, InvalidInput
from tilfreds.fields import single_line, storable
from tilfreds.invitations import inbound
from tilfreds.people.phones import normalise_phone
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.web.render import page

router = APIRouter(include_in_schema=False)
_URL = re.compile(r"https?://\S+")
# The reply form carries an HMAC of when it was shown, under a key that lives as long as this
# process: a page on another site cannot read it, so cannot post replies in the developer's name.
_FORM_KEY = secrets.token_bytes(32)
FORM_LIFETIME = timedelta(hours=12)


def _sign(issued: str) -> str:
    return hmac.new(_FORM_KEY, f"dev-phone-reply:{issued}".encode(), hashlib.sha256).hexdigest()


def form_token(now: datetime) -> str:
    issued = str(int(now.timestamp()))
    return f"{issued}.{_sign(issued)}"


def form_token_valid(token: str, now: datetime) -> bool:
    issued, _, mac = token.partition(".")
    if not (issued.isascii() and issued.isdigit() and len(issued) <= 12):
        return False
    if not hmac.compare_digest(mac.encode(), _sign(issued).encode()):
        return False
    return 0 <= now.timestamp() - int(issued) <= FORM_LIFETIME.total_seconds()


def _access(request: Request, rt: Runtime) -> Access:
    access = dev_phone_access(request, rt) if rt.dev_phone_enabled else None
    if access is None:
        raise HTTPException(404)  # exactly what a missing page answers
    return access


def linkify(text: str) -> Markup:
    """Escape a message and turn its links into anchors, as a phone would."""
    out, last = [], 0
    for match in _URL.finditer(text):
        out.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@router.get("/dev/phone", response_class=HTMLResponse)
def phone(request: Request, rt: RuntimeDep) -> Response:
    _access(request, rt)
    with rt.db.read_only() as session:
        messages = dev.inbox(session, rt.keys)
    threads: dict[str, list[dev.PhoneMessage]] = {}
    for m in reversed(messages):  # oldest first inside a conversation
        threads.setdefault(m.phone, []).append(m)
    ordered = sorted(threads.items(), key=lambda kv: kv[1][-1].id, reverse=True)
    return page(
        request,
        "phone.html",
        threads=ordered,
        linkify=linkify,
        error=request.query_params.get("error"),
        form_token=form_token(rt.clock.now()),
    )


@router.post("/dev/phone/reply")
def reply(
    request: Request,
    rt: RuntimeDep,
    phone: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    access = _access(request, rt)
    # A bearer header is never sent by a browser on another site's behalf; a cookie or a loopback
    # bind is, so those need the form's token.
    forged = access != "header" and not form_token_valid(csrf, rt.clock.now())
    if forged or is_cross_site(request):
        raise Forbidden("this reply did not come from the dev phone page: reload it and try again")
    try:
        number = normalise_phone(single_line(phone), region=rt.settings.default_region)
        text = storable(text)
    except (InvalidInput, ValueError):
        return RedirectResponse("/dev/phone?error=input", status_code=303)
    if text.strip():
        now = rt.clock.now()
        with rt.db.unit_of_work() as session:
            inbound.receive_dev_reply(
                session,
                rt.keys,
                phone_e164=number,
                our_number=rt.settings.sms_sender,
                text=text.strip(),
                now=now,
                replies=rt.reply_context(),
            )
    return RedirectResponse("/dev/phone", status_code=303)
