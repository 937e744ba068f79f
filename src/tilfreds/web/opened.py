"""``POST /s/{code}/opened``: the survey page's beacon (``static/opened.js``) saying a person has
the page in front of them. No body, nothing in the answer (204), one update that only the first
call changes; refused when the browser says another site sent it (``Sec-Fetch-Site`` or
``Origin``), so a page elsewhere cannot mark someone's link opened. A link scanner that only
fetches the page never gets here, and one that runs its scripts does not click or type, which is
what the script waits for (see docs/operating.md, "How to read the funnel")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tilfreds.api.deps import RuntimeDep
from tilfreds.api.dev import is_cross_site
from tilfreds.errors import Forbidden, NotFound
from tilfreds.invitations.opened import mark_opened_by_code

router = APIRouter(include_in_schema=False)


@router.post("/s/{code}/opened", status_code=204)
def opened(code: str, request: Request, rt: RuntimeDep) -> Response:
    if not (code.isascii() and code.isalnum() and len(code) <= 16):
        raise NotFound("this link is not valid")  # never a code we made; don't ask the database
    if is_cross_site(request):
        raise Forbidden("sent by another site")
    with rt.db.unit_of_work() as session:
        mark_opened_by_code(session, code, rt.clock.now())
    return Response(status_code=204)
