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
set-based: one upsert for a batch of receipts, then its messages locked and settled from their
parts' tally by one update, whatever the batch's size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tilfreds.db import unnest
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.invitations.settling import settle
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


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _upsert_rows(
    session: Session,
    arrays: Any,
    each: Callable[[Any], Any],
    columns: dict[str, list[Any]],
    **same: Any,
) -> Sequence[Any]:
    """Upsert rows given column by column, with the values ``same`` for every row: on
    PostgreSQL as one array a column (the ``arrays`` statement), elsewhere as an executemany of
    ``each`` (SQLite runs in this process: a row costs no round trip)."""
    if _postgres(session):
        return session.execute(arrays, {**columns, **same}).all()
    given = zip(*columns.values(), strict=True)
    rows = [dict(zip(columns, values, strict=True)) | same for values in given]
    return session.execute(each(_upsert(session)), rows).all()


def _record_statement(insert: Any) -> Any:
    return insert.on_conflict_do_update(
        index_elements=["transport", "provider_id"],
        set_={
            "state": insert.excluded.state,
            "error_code": func.coalesce(insert.excluded.error_code, _parts.c.error_code),
            "state_at": insert.excluded.state_at,
        },
        where=_rank(insert.excluded.state) > _rank(_parts.c.state),
    ).returning(_parts.c.message_id, _parts.c.transport, _parts.c.provider_id)


@cache
def _record_statement_pg() -> Any:
    """The receipts' upsert on PostgreSQL: one ``INSERT ... SELECT FROM unnest(...)``."""
    v = unnest(
        transport=String,
        provider_id=String,
        state=String,
        error_code=String,
        state_at=DateTime(timezone=True),
    )
    columns = ["transport", "provider_id", "state", "error_code", "state_at", "created_at"]
    rows = select(*(v.c[c] for c in columns[:-1]), bindparam("created_at", type_=DateTime(True)))
    return _record_statement(postgresql.insert(_parts).from_select(columns, rows))


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
    rows = [  # in key order: the lock order
        (transport, provider_id, r.state.value, r.error_code[:40] if r.error_code else None, r)
        for (transport, provider_id), r in sorted(best.items())
    ]
    found = _upsert_rows(
        session,
        _record_statement_pg(),
        _record_statement,
        {
            "transport": [row[0] for row in rows],
            "provider_id": [row[1] for row in rows],
            "state": [row[2] for row in rows],
            "error_code": [row[3] for row in rows],
            "state_at": [row[4].at or now for row in rows],
        },
        created_at=now,
    )
    messages = {mid for mid, _, _ in found if mid is not None}
    strangers = {(t, pid): best[t, pid].reference for mid, t, pid in found if mid is None}
    claimed = _claim_by_reference(session, strangers)
    messages |= set(claimed.values())
    unknown = len(strangers) - len(claimed)
    if unknown:  # usual when a receipt overtakes the submit response; see ``unmatched``
        log.debug(
            "%d receipts for ids no message has yet; kept to apply when they show up", unknown
        )
    return ReceiptsRecorded(changed=len(found), unknown=unknown, settled=settle(session, messages))


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


def _link_statement(insert: Any) -> Any:
    return insert.on_conflict_do_update(
        index_elements=["transport", "provider_id"],
        set_={"message_id": insert.excluded.message_id, "part": insert.excluded.part},
    ).returning(_parts.c.message_id, _parts.c.state)


@cache
def link_statement() -> Any:
    """Linking a window's ids on PostgreSQL: one ``INSERT ... SELECT FROM unnest(...)``."""
    v = unnest(provider_id=String, message_id=Integer, part=Integer)
    columns = ["transport", "provider_id", "message_id", "part", "created_at"]
    rows = select(
        bindparam("transport", type_=String),
        v.c.provider_id,
        v.c.message_id,
        v.c.part,
        bindparam("created_at", type_=DateTime(True)),
    )
    return _link_statement(postgresql.insert(_parts).from_select(columns, rows))


def link_parts(
    session: Session, *, transport: str, submitted: Mapping[int, Submitted], now: datetime
) -> set[int]:
    """Record the ids the provider gave each submitted message; returns the messages for which a
    receipt had already come (to ``settle`` once their status is recorded)."""
    if not submitted:
        return set()
    early = _upsert_rows(
        session,
        link_statement(),
        _link_statement,
        link_columns(submitted),
        transport=transport,
        created_at=now,
    )
    return came_first(early)


def came_first(linked: Iterable[Sequence[Any]]) -> set[int]:
    """Of the parts just linked (message id, state), the messages whose receipt came first."""
    return {mid for mid, state in linked if state is not None}


def link_columns(submitted: Mapping[int, Submitted]) -> dict[str, list[Any]]:
    """The parts ``link_parts`` upserts, a list a column, in the lock order; on PostgreSQL
    ``link_statement()`` with these and ``transport`` and ``created_at`` does the same (for a
    caller sending it together with other statements)."""
    given = {  # an id given twice (a provider's quirk) is kept once: one row per id
        pid[:64]: (mid, n)
        for mid, outcome in submitted.items()
        for n, pid in enumerate(outcome.provider_ids)
    }
    rows = sorted((pid, mid, n) for pid, (mid, n) in given.items())  # the lock order
    return {
        "provider_id": [pid for pid, _, _ in rows],
        "message_id": [mid for _, mid, _ in rows],
        "part": [n for _, _, n in rows],
    }


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
