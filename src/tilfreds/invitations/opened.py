"""The funnel's "opened" step: a person, not a link scanner, opened the survey link.

A GET of ``/s/{code}`` records nothing (scanners fetch links, some run their scripts too), so
opened is set by the survey page's beacon after a person's first interaction with the visible
page (``web/opened.py``, ``static/opened.js``) and by every POST from the page (an answer, a
decline, the identity step). Each is one ``UPDATE ... WHERE opened_at IS NULL``: the first time
counts, later ones change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, Table, update
from sqlalchemy.orm import Session

from tilfreds.invitations.models import Invitation
from tilfreds.invitations.states import OPEN_INVITATION

_invitations = cast(Table, Invitation.__table__)


def mark_opened(session: Session, invitation_id: int, now: datetime) -> bool:
    """Record that the person opened this invitation (from a POST of the page). True the first
    time."""
    c = _invitations.c
    result = session.execute(
        update(_invitations)
        .where(c.id == invitation_id, c.opened_at.is_(None))
        .values(opened_at=now)
    )
    return cast(CursorResult[tuple[()]], result).rowcount > 0


def mark_opened_by_code(session: Session, code: str, now: datetime) -> bool:
    """The beacon's update: only an invitation still open (pending or sent, not expired) is
    marked, so a stale tab cannot change a closed one's funnel. True the first time."""
    c = _invitations.c
    result = session.execute(
        update(_invitations)
        .where(
            c.code == code,
            c.opened_at.is_(None),
            c.status.in_(OPEN_INVITATION),
            c.expires_at > now,
        )
        .values(opened_at=now)
    )
    return cast(CursorResult[tuple[()]], result).rowcount > 0
