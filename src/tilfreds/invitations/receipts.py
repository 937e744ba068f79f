"""Delivery receipts: a message is delivered when every id the provider gave it is, failed or
expired when any is (P3). Receipts are matched on (transport, provider id) in ``message_parts``.

Receipts come unordered, twice, and before the submit response was recorded (SMPP). So a part's
state only ever moves up (enroute < expired < failed < delivered: a final state is never
overwritten by an intermediate one, and delivered beats later noise); a receipt for an id not yet
known is kept as a part without a message, and applied when ``link_parts`` records the id, or
when it names (as ``reference``) a message left ``in_doubt``, whose ids we never learnt. One
that no message claims is kept for reconciliation until ``purge_unmatched`` deletes it (the
worker's sweep, after ``TILFREDS_UNMATCHED_RECEIPTS_DAYS``).

Locks, in one order everywhere: parts (upserted in key order), then messages (in id order), and
a message's status is recomputed from all its parts while its row is locked: whichever of two
concurrent writers locks it last sees the other's committed parts. The statements are
set-based: one upsert for a batch of receipts, one read and at most three updates for its
messages, whatever the batch's size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tilfreds.db import ids_in
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.invitations.states import MessageStatus
from tilfreds.sms.transport import Receipt, ReceiptState, Submitted

log = logging.getLogger(__name__)
_parts = cast(Table, MessagePart.__table__)
_messages = cast(Table, Message.__table__)
M = MessageStatus
RANK = {
    ReceiptState.ENROUTE: 1,
    ReceiptState.EXPIRED: 2,
    ReceiptState.FAILED: 3,
    ReceiptState.DELIVERED: 4,
}
# the message statuses receipts may settle: sent, or in doubt (a receipt proves it went out)
SETTLEABLE = (M.SUBMITTED, M.IN_DOUBT, M.DELIVERED, M.FAILED, M.EXPIRED)


def _rank(column: Any) -> Any:
    return case(*((column == state.value, rank) for state, rank in RANK.items()), else_=0)


@dataclass(frozen=True)
class ReceiptsRecorded:
    changed: int  # parts whose state moved up
    unknown: int  # receipts for ids no message has (yet): kept for reconciliation
    settled: int  # messages whose parts now say delivered, failed or expired


def _upsert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(_parts)


def record_receipts(
    session: Session, receipts: Sequence[Receipt], *, now: datetime
) -> ReceiptsRecorded:
    """Apply a batch of receipts; a receipt seen before, or older news than what a part already
    has, changes nothing."""
    best: dict[tuple[str, str], Receipt] = {}
    for r in receipts:  # one row per id in one statement (PostgreSQL requires it): the best
        key = (r.transport[:20], r.provider_id[:64])
        if key not in best or RANK[r.state] > RANK[best[key].state]:
            best[key] = r
    if not best:
        return ReceiptsRecorded(0, 0, 0)
    insert = _upsert(session)
    stmt = insert.on_conflict_do_update(
        index_elements=["transport", "provider_id"],
        set_={
            "state": insert.excluded.state,
            "error_code": func.coalesce(insert.excluded.error_code, _parts.c.error_code),
            "state_at": insert.excluded.state_at,
        },
        where=_rank(insert.excluded.state) > _rank(_parts.c.state),
    ).returning(_parts.c.message_id, _parts.c.transport, _parts.c.provider_id)
    rows = session.execute(
        stmt,
        [
            {
                "transport": transport,
                "provider_id": provider_id,
                "state": r.state.value,
                "error_code": r.error_code[:40] if r.error_code else None,
                "state_at": r.at or now,
                "created_at": now,
            }
            for (transport, provider_id), r in sorted(best.items())  # the lock order
        ],
    ).all()
    messages = {mid for mid, _, _ in rows if mid is not None}
    strangers = {(t, pid): best[t, pid].reference for mid, t, pid in rows if mid is None}
    claimed = _claim_by_reference(session, strangers)
    messages |= set(claimed.values())
    unknown = len(strangers) - len(claimed)
    if unknown:  # usual when a receipt overtakes the submit response; see ``unmatched``
        log.debug(
            "%d receipts for ids no message has yet; kept to apply when they show up", unknown
        )
    return ReceiptsRecorded(changed=len(rows), unknown=unknown, settled=settle(session, messages))


def _claim_by_reference(
    session: Session, strangers: Mapping[tuple[str, str], str | None]
) -> dict[tuple[str, str], int]:
    """Parts of a message left ``in_doubt`` (its submit answer was lost, so we never learnt its
    ids), found by our reference where the provider echoes it: the receipt proves it went out."""
    refs = {  # a message id (an INTEGER); anything else the provider echoes is not ours
        key: int(ref)
        for key, ref in strangers.items()
        if ref and ref.isascii() and ref.isdigit() and 0 < int(ref) < 2**31
    }
    if not refs:
        return {}
    doubtful = set(
        session.execute(
            select(_messages.c.id).where(
                _messages.c.id.in_(set(refs.values())), _messages.c.status == M.IN_DOUBT
            )
        ).scalars()
    )
    claimed = {key: mid for key, mid in sorted(refs.items()) if mid in doubtful}
    if claimed:
        p = _parts.c
        session.execute(
            update(_parts)
            .where(
                p.transport == bindparam("t"),
                p.provider_id == bindparam("pid"),
                p.message_id.is_(None),
            )
            .values(message_id=bindparam("mid")),
            [{"t": t, "pid": pid, "mid": mid} for (t, pid), mid in claimed.items()],
        )
    return claimed


def link_parts(
    session: Session, *, transport: str, submitted: Mapping[int, Submitted], now: datetime
) -> set[int]:
    """Record the ids the provider gave each submitted message; returns the messages for which a
    receipt had already come (to ``settle`` once their status is recorded)."""
    if not submitted:
        return set()
    insert = _upsert(session)
    stmt = insert.on_conflict_do_update(
        index_elements=["transport", "provider_id"],
        set_={"message_id": insert.excluded.message_id, "part": insert.excluded.part},
    ).returning(_parts.c.message_id, _parts.c.state)
    given = {  # an id given twice (a provider's quirk) is kept once: one row per id
        pid[:64]: (mid, n)
        for mid, outcome in submitted.items()
        for n, pid in enumerate(outcome.provider_ids)
    }
    rows = sorted((pid, mid, n) for pid, (mid, n) in given.items())  # the lock order
    early = session.execute(
        stmt,
        [
            {
                "transport": transport,
                "provider_id": pid,
                "message_id": mid,
                "part": n,
                "created_at": now,
            }
            for pid, mid, n in rows
        ],
    ).all()
    return {mid for mid, state in early if state is not None}


def settle(session: Session, message_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Recompute the status of these messages from all their parts, their rows locked in id
    order first; returns how many have a final status by their parts. A message none of whose
    parts has a final state is left as it is."""
    ids = sorted(set(message_ids))
    if not ids:
        return 0
    postgres = session.get_bind().dialect.name == "postgresql"
    m, p = _messages.c, _parts.c
    locked = select(m.id).where(ids_in(postgres, m.id)).order_by(m.id).with_for_update()
    session.execute(locked, {"ids": ids}).all()
    tally = session.execute(
        select(
            p.message_id,
            func.count(),
            func.count(case((p.state == ReceiptState.DELIVERED.value, 1))),
            func.count(case((p.state == ReceiptState.FAILED.value, 1))),
            func.count(case((p.state == ReceiptState.EXPIRED.value, 1))),
            func.max(p.state_at),
            func.max(p.error_code),
        )
        .where(ids_in(postgres, p.message_id))
        .group_by(p.message_id),
        {"ids": ids},
    ).all()
    verdicts: dict[MessageStatus, list[dict[str, Any]]] = {}
    for mid, parts, delivered, failed, expired, at, code in tally:
        status = (
            M.DELIVERED
            if delivered == parts
            else M.FAILED
            if failed
            else M.EXPIRED
            if expired
            else None
        )
        if status is not None:
            verdicts.setdefault(status, []).append({"mid": mid, "at": at or now, "code": code})
    for status, rows in verdicts.items():
        final = status != M.DELIVERED
        # delivered settles any of them; failed or expired only one not yet final
        may = SETTLEABLE[:2] if final else SETTLEABLE
        stmt = (
            update(_messages)
            .where(m.id == bindparam("mid"), or_(*(m.status == s for s in may)))  # executemany
            .values(
                status=status,
                lease_until=None,
                **(
                    {"failed_at": bindparam("at"), "error_code": bindparam("code")}
                    if final
                    else {"delivered_at": bindparam("at")}
                ),
            )
        )
        session.execute(stmt, rows)
    return sum(len(rows) for rows in verdicts.values())


def unmatched(session: Session, *, older_than: datetime, newer_than: datetime | None = None) -> int:
    """Receipts still matched to no message although they came before ``older_than`` (and
    after ``newer_than``): ids we never recorded (a submit whose answer was lost, another system
    on the same account)."""
    p = _parts.c
    since = [p.created_at >= newer_than] if newer_than is not None else []
    return session.execute(
        select(func.count())
        .select_from(_parts)
        .where(p.message_id.is_(None), p.created_at < older_than, *since)
    ).scalar_one()


def purge_unmatched(session: Session, *, older_than: datetime) -> int:
    """Delete the receipts still matched to no message that came before ``older_than``: their id
    did not show up while they were kept for reconciliation. Returns how many; a part that a
    concurrent ``link_parts`` claims is not deleted (PostgreSQL re-checks the row it waited for)."""
    p = _parts.c
    result = session.execute(
        delete(_parts).where(p.message_id.is_(None), p.created_at < older_than)
    )
    return int(getattr(result, "rowcount", 0))
