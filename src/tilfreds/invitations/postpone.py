"""The send queue's one transition that eligibility adds: a claimed message whose send window is
closed goes back to the queue, due at the window's next opening (P2: a decent hour).

claimed -> queued (``send_after`` moved, lease dropped). Set-based and fenced on ``claimed_by``
like the transitions in ``jobs``: a worker that lost its lease, or a message an objection
cancelled meanwhile, is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import DateTime, Table, bindparam, func, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from tilfreds.db import IntArray
from tilfreds.invitations.models import Message
from tilfreds.invitations.states import MessageStatus

_messages = cast(Table, Message.__table__)


@cache
def _statement(postgres: bool) -> Any:
    m = _messages.c
    if postgres:  # one statement, each row's new time joined from two arrays
        given = func.unnest(
            bindparam("ids", type_=IntArray()),
            bindparam("untils", type_=ARRAY(DateTime(timezone=True))),
        )
        v = given.table_valued("mid", "until").render_derived(name="v")
        match, until = m.id == v.c.mid, v.c.until
    else:  # an executemany: SQLite runs in this process
        match, until = m.id == bindparam("mid"), bindparam("until")
    return (
        update(_messages)
        .where(match, m.claimed_by == bindparam("worker"), m.status == MessageStatus.CLAIMED)
        .values(status=MessageStatus.QUEUED, send_after=until, claimed_by=None, lease_until=None)
    )


def postpone(session: Session, *, worker_id: str, later: Mapping[int, datetime]) -> None:
    """Give claimed messages back to the queue, each due at its own time."""
    if not later:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _statement(True),
            {"ids": list(later), "untils": list(later.values()), "worker": worker_id},
        )
    else:
        session.execute(
            _statement(False),
            [{"mid": mid, "until": until, "worker": worker_id} for mid, until in later.items()],
        )
