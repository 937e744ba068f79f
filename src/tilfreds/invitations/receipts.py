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
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from tilfreds.db import IntArray, TextArray, ids_in
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.invitations.states import MessageStatus
from tilfreds.pipelined import REPLAN, run_together
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


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def unnest(**columns: Any) -> Any:
    """PostgreSQL: rows bound as one array a column and read back as the derived table ``v``:
    one statement text whatever the number of rows (psycopg parses it once, the server keeps it
    prepared), and no per-row parameter work in Python, where an executemany of the same rows
    spends most of its time."""
    # bound as one text each (see ``db``)
    given: dict[Any, type[IntArray | TextArray]] = {Integer: IntArray, String: TextArray}
    arrays = (
        bindparam(name, type_=given[kind]())
        if kind in given
        else sql_cast(bindparam(name), ARRAY(kind))
        for name, kind in columns.items()
    )
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="v")


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
