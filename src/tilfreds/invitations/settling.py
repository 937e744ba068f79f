"""Settling messages from their receipts: a message's status recomputed from all its parts
(``message_parts``) while its row is locked, delivered when every part is, failed or expired when
any is (P3). Receipts record parts (``receipts``); the send worker settles the messages whose
receipt came before their window was recorded (``outcomes``). Locks: messages in id order, after
the parts their writer upserted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Integer, Table, and_, bindparam, case, func, or_, select, true, update
from sqlalchemy.orm import Session

from tilfreds.db import ids_in, unnest
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.invitations.states import MessageStatus
from tilfreds.pipelined import REPLAN, run_together
from tilfreds.sms.transport import ReceiptState

_parts = cast(Table, MessagePart.__table__)
_messages = cast(Table, Message.__table__)
M = MessageStatus
# the message statuses receipts may settle: sent, or in doubt (a receipt proves it went out)
SETTLEABLE = (M.SUBMITTED, M.IN_DOUBT, M.DELIVERED, M.FAILED, M.EXPIRED)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def settle(session: Session, message_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Recompute the status of these messages from all their parts, their rows locked in id
    order first; returns how many it settled. A message none of whose parts has a final state
    is left as it is."""
    ids = sorted(set(message_ids))
    if not ids:
        return 0
    steps = settle_steps(session, ids, now=now)
    if _postgres(session):  # the two answered together (one round trip), the verdict replanned
        return len(run_together(session, steps)[1])
    lock, verdict = steps
    session.execute(*lock).all()
    return len(session.execute(*verdict).all())


def settle_steps(
    session: Session, message_ids: Sequence[int], *, now: datetime | None = None
) -> list[tuple[Any, dict[str, Any]]]:
    """``settle`` as its two statements (lock, then verdict) with their parameters, for a
    caller that sends them together with others (``tilfreds.pipelined``). The verdict is a
    separate statement so that its tally reads the parts after the locks are held: a writer
    that committed parts meanwhile is seen."""
    lock, verdict = _settle_statements(_postgres(session))
    ids = {"ids": sorted(set(message_ids))}
    return [(lock, ids), (verdict, ids | {"now": now})]


@cache
def _settle_statements(postgres: bool) -> tuple[Any, Any]:
    """The messages locked in id order; then each one's status from the tally of its parts, in
    one update: delivered when every part is (from any status receipts may settle), else failed
    when any part failed, else expired when any expired (only a message not yet final)."""
    m, p = _messages.c, _parts.c
    ids = unnest(ids=Integer)
    lock = (  # on PostgreSQL joined from the array, as the tally below (see there)
        select(m.id).select_from(ids.join(_messages, m.id == ids.c.ids))
        if postgres
        else select(m.id).where(ids_in(postgres, m.id))
    )
    lock = lock.order_by(m.id).with_for_update(of=_messages)
    tally = (
        func.count(p.id).label("parts"),
        func.count(case((p.state == ReceiptState.DELIVERED.value, 1))).label("delivered"),
        func.count(case((p.state == ReceiptState.FAILED.value, 1))).label("failed"),
        func.count(case((p.state == ReceiptState.EXPIRED.value, 1))).label("expired"),
        func.max(p.state_at).label("at"),
        func.max(p.error_code).label("code"),
    )
    one = _messages.alias("one")  # the message with its status, which the update tests here
    if postgres:
        # each message found by its key and its parts looked up by the index, one at a time:
        # ``message_id = ANY(ids)`` with the ids bound as one text leaves the planner unable to
        # count them, and a plan kept from when the table was small (psycopg prepares a
        # statement run five times) tested every part against every id (0.5-0.8 s a tally at
        # 35,000 parts); a hash join would read every part for each settle, which is on the
        # sending path. The status is tested here, not on the updated table: with statistics
        # from when none was settleable (the benchmark's reset) the planner then scanned all
        # messages against every id (3.8 s for 1,500)
        each = select(*tally).where(p.message_id == one.c.id).lateral("each")
        counted = (
            select(one.c.id.label("mid"), one.c.status, *each.c)
            .select_from(one.join(each, true()))
            .where(ids_in(postgres, one.c.id))
        )
    else:
        counted = (
            select(p.message_id.label("mid"), one.c.status, *tally)
            .where(ids_in(postgres, p.message_id), one.c.id == p.message_id)
            .group_by(p.message_id, one.c.status)
        )
    t = counted.subquery("t")
    delivered = and_(t.c.delivered == t.c.parts, t.c.parts > 0)  # an id without parts: none
    failed_or_expired = and_(~delivered, t.c.failed + t.c.expired > 0)
    at = func.coalesce(t.c.at, bindparam("now", type_=m.delivered_at.type))
    may = {  # no IN: an expanding parameter is rendered at execution, not in a pipeline
        final: or_(*(t.c.status == status for status in statuses))
        for final, statuses in ((False, SETTLEABLE), (True, SETTLEABLE[:2]))
    }
    verdict = (
        update(_messages)
        .where(
            m.id == t.c.mid, or_(and_(delivered, may[False]), and_(failed_or_expired, may[True]))
        )
        .values(
            status=case((delivered, M.DELIVERED), (t.c.failed > 0, M.FAILED), else_=M.EXPIRED),
            lease_until=None,
            delivered_at=case((delivered, at), else_=m.delivered_at),
            failed_at=case((delivered, m.failed_at), else_=at),
            error_code=case((delivered, m.error_code), else_=t.c.code),
        )
        .returning(m.id)
        # its plan depends on how many parts there are: one kept from when message_parts was
        # empty (a new installation, the benchmark's reset) read every part for each id
        .execution_options(**{REPLAN: True})
    )
    return lock, verdict
