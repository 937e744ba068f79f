"""``/api/v1/wrong-numbers``: the numbers respondents said are not theirs (P17), for the case
system to collect and correct; a corrected number arrives with the next interaction."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from tilfreds.api.deps import OperatorDep, RuntimeDep
from tilfreds.api.error_responses import responses
from tilfreds.fields import Moment
from tilfreds.invitations import wrong_numbers

router = APIRouter(tags=["interactions"])  # inside routes.router, under /api/v1


@router.get(
    "/wrong-numbers",
    summary="Wrong numbers reported by respondents",
    responses=responses(401, 403, 422),
)
def wrong_number_feed(
    rt: RuntimeDep,
    _op: OperatorDep,
    since: Annotated[
        Moment | None, Query(description="Reports at or after this time (with a time zone).")
    ] = None,
    after_id: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="With `since`: skip reports up to this id.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=wrong_numbers.MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Interactions whose respondent answered "no, that is not me" to the identity question:
    ``items`` (``external_id``, ``reported_at``, ``id``), oldest first. When ``next`` is not
    null, ask again with its ``since`` and ``after_id`` for the next page. The survey ended and
    the number gets no more surveys; send the corrected number with the next interaction."""
    with rt.db.read_only() as session:
        page = wrong_numbers.reported(session, since=since, after_id=after_id, limit=limit)
    return {
        "items": [asdict(item) for item in page.items],
        "next": (
            {"since": page.next_since, "after_id": page.next_after_id}
            if page.next_since is not None
            else None
        ),
    }
