"""The wrong-number feed for the case system (P17, rectification): every invitation whose
respondent said "that is not me", by the interaction's external_id and when they said it, in the
order reported, a page at a time. Read-only; holds no number or name, only the case's own id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tilfreds.invitations.models import Invitation
from tilfreds.people.models import Interaction

MAX_PAGE = 1000


@dataclass(frozen=True)
class WrongNumber:
    external_id: str
    reported_at: datetime
    id: int  # the report's place in the feed (with reported_at, the cursor for the next page)


@dataclass(frozen=True)
class Page:
    items: list[WrongNumber]
    # where the next page starts, or None when this one was the last
    next_since: datetime | None
    next_after_id: int | None


def reported(
    session: Session, *, since: datetime | None, after_id: int = 0, limit: int = 100
) -> Page:
    """Reports from ``since`` on (after ``after_id`` among those at exactly ``since``), oldest
    first; uses the index on (wrong_number_at, id)."""
    i = Invitation
    query = (
        select(Interaction.external_id, i.wrong_number_at, i.id)
        .join(Interaction, Interaction.id == i.interaction_id)
        .where(i.wrong_number_at.is_not(None))
        .order_by(i.wrong_number_at, i.id)
        .limit(limit + 1)
    )
    if since is not None:
        query = query.where(
            or_(
                i.wrong_number_at > since,
                and_(i.wrong_number_at == since, i.id > after_id),
            )
        )
    rows = session.execute(query).all()
    items = [
        WrongNumber(external_id=external_id, reported_at=at, id=id_)
        for external_id, at, id_ in rows[:limit]
        if at is not None  # the query's condition; says so to the type checker
    ]
    more = len(rows) > limit
    return Page(
        items=items,
        next_since=items[-1].reported_at if more else None,
        next_after_id=items[-1].id if more else None,
    )
