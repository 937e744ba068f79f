"""The dev phone: the simulated handset's messages, links clickable, and a box to reply from."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from tilfreds.api.deps import RuntimeDep
from tilfreds.errors import InvalidInput
from tilfreds.fields import single_line, storable
from tilfreds.invitations import inbound
from tilfreds.people.phones import normalise_phone
from tilfreds.sms import dev
from tilfreds.web.render import page

router = APIRouter(include_in_schema=False)
_URL = re.compile(r"https?://\S+")


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
    if not rt.dev_phone_enabled:
        raise HTTPException(404)
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
    )


@router.post("/dev/phone/reply")
def reply(
    rt: RuntimeDep, phone: Annotated[str, Form()] = "", text: Annotated[str, Form()] = ""
) -> Response:
    if not rt.dev_phone_enabled:
        raise HTTPException(404)
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
            )
    return RedirectResponse("/dev/phone", status_code=303)
