"""The send queue's state transitions, each a set-based statement (P3, P7).

queued -> claimed (leased by one worker; never handed over, so safe to requeue)
       -> sending (handed to the transport, one window at a time; a crash now leaves it in doubt)
       -> submitted | queued again (retry) | failed | in_doubt (``outcomes``); or skipped with a
          reason at any point before; receipts then settle it (``receipts``).
(The worker takes a batch with ``outbox.take`` and ``lease``: its first window goes from queued
straight to sending in that transaction, the rest to claimed.)

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so many workers take disjoint batches.
Every transition after the claim is fenced on ``claimed_by``: a worker that was paused past its
lease finds its rows taken over and sends nothing twice. Provider I/O happens between
transactions, never inside one. The worker's statements are Core, on the table: no ORM object is
ever loaded here, so the ORM's bulk-update bookkeeping would only cost time (see
docs/benchmarks-history.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.selectable import ScalarSelect

from tilfreds.db import IntArray, TextArray, ids_in, ids_in_once
from tilfreds.invitations.models import QUEUED, Invitation, Message, held
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
_messages = cast(Table, Message.__table__)
_invitations = cast(Table, Invitation.__table__)
M = MessageStatus


@dataclass(frozen=True)
class Recovery:
    requeued: int  # claimed by a worker that stopped before handing them over
    in_doubt: int  # in flight when their worker stopped: may or may not have gone out
    failed: int  # in doubt too often: given up


def recover_expired_leases(
    session: Session, *, now: datetime, resend_in_doubt: bool, limit: int = 1000
) -> Recovery:
    """Take back messages whose worker's lease ran out. Those never handed to the transport go
    back to the queue; those in flight become ``in_doubt``, or are queued again when
    ``resend_in_doubt`` (the transport deduplicates, or the operator prefers a duplicate to a
    loss). A message in doubt ``MAX_ATTEMPTS`` times fails instead of looping."""
    requeued = session.execute(
        update(Message)
        .where(_picked(session, Message.id, _expired(M.CLAIMED, now, limit)))
        .values(status=M.QUEUED, lease_until=None)
        .returning(Message.id)
    ).all()
    rows = session.execute(
        update(Message)
        .where(_picked(session, Message.id, _expired(M.SENDING, now, limit)))
        .values(
            status=case(
                (Message.attempts >= MAX_ATTEMPTS, M.FAILED),
                else_=M.QUEUED if resend_in_doubt else M.IN_DOUBT,
            ),
            lease_until=None,
            last_error=case(
                (
                    Message.attempts >= MAX_ATTEMPTS,
                    f"no outcome recorded after {MAX_ATTEMPTS} attempts",
                ),
                else_="its worker stopped while it was in flight",
            ),
        )
        .returning(Message.status)
    ).all()
    failed = sum(1 for (status,) in rows if status == M.FAILED)
    return Recovery(requeued=len(requeued), in_doubt=len(rows) - failed, failed=failed)


def _expired(status: MessageStatus, now: datetime, limit: int) -> ScalarSelect[int]:
    return (
        select(Message.id)
        .where(Message.status == held(status), Message.lease_until < now)
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


def on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _picked(
    session: Session, column: ColumnElement[int] | QueryableAttribute[int], ids: ScalarSelect[int]
) -> ColumnElement[bool]:
    """``column IN (subquery)``; on PostgreSQL ``column = ANY(ARRAY(subquery))``: the subquery
    runs once, first, and the rows are then found by primary key. (Left an ``IN``, the planner
    may hash-join it against a scan of the whole queue.)"""
    if on_postgres(session):
        return column == any_(func.array(ids))
    return column.in_(ids)


@dataclass(frozen=True)
class Statements:
    """The worker's statements, built once per kind of database with bound parameters: each pass
    only binds values, instead of building, compiling and keying new statements."""

    claim: Any
    lease: Any
    start_sending: Any
    invitations_sent: Any
    submitted: Any


@cache
def statements(postgres: bool) -> Statements:
    m, i = _messages.c, _invitations.c
    due = (
        select(m.id)
        .where(m.status == QUEUED, m.send_after <= bindparam("now"))
        .order_by(m.send_after, m.id)  # the due index's order
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    picked = m.id == any_(func.array(due)) if postgres else m.id.in_(due)
    invitations = (
        select(m.invitation_id)
        .where(ids_in(postgres, m.id), m.purpose == MessagePurpose.INVITATION)
        .scalar_subquery()
    )
    ours = m.claimed_by == bindparam("worker")
    if postgres:  # one statement a window, each row's provider id joined from the arrays
        given = func.unnest(
            bindparam("ids", type_=IntArray()),
            bindparam("pids", type_=TextArray()),
            bindparam("segs", type_=IntArray()),
            bindparam("encs", type_=TextArray()),
            bindparam("starts", type_=IntArray()),
        )
        v = given.table_valued("mid", "pid", "seg", "enc", "go").render_derived(name="v")
        match, provider_id, segments, encoding = m.id == v.c.mid, v.c.pid, v.c.seg, v.c.enc
        # a row of the window to start: a flag of its own row, not ``id = ANY(:start)``, whose
        # cast of the bound text PostgreSQL redoes on every row for each of the nine tests below
        # (``array_in`` is only stable, so never folded): half of the statement's time
        starting = v.c.go == 1
    else:  # an executemany: SQLite runs in this process, a row costs no round trip
        match = m.id == bindparam("mid")
        provider_id, segments, encoding = bindparam("pid"), bindparam("seg"), bindparam("enc")
    sending = ids_in_once(postgres, m.id, "sending")  # tested on every row leased
    return Statements(
        claim=update(_messages)
        .where(picked)
        .values(status=M.CLAIMED, claimed_by=bindparam("worker"), lease_until=bindparam("until"))
        .returning(m.id),
        lease=update(_messages)
        .where(ids_in(postgres, m.id), m.status == M.QUEUED)
        .values(
            status=case((sending, M.SENDING), else_=M.CLAIMED),
            attempts=m.attempts + case((sending, 1), else_=0),
            claimed_by=bindparam("worker"),
            lease_until=bindparam("until"),
        )
        .returning(m.id, m.status),
        start_sending=update(_messages)
        .where(ids_in(postgres, m.id), ours, m.status == M.CLAIMED)
        .values(status=M.SENDING, attempts=m.attempts + 1, lease_until=bindparam("until"))
        .returning(m.id),
        invitations_sent=update(_invitations)
        .where(
            # found by primary key (on PostgreSQL, not a hash join over a scan of invitations)
            i.id == any_(func.array(invitations)) if postgres else i.id.in_(invitations),
            i.status == InvitationStatus.PENDING,
        )
        .values(status=InvitationStatus.SENT, sent_at=bindparam("now")),
        # PostgreSQL: a window submitted and the next one (``start``, in the arrays too) marked
        # in flight in one statement (one round trip fewer a window); SQLite: an executemany
        submitted=update(_messages)
        .where(
            match,
            ours,
            case(
                (starting, m.status == M.CLAIMED),
                else_=or_(m.status == M.SENDING, m.status == M.IN_DOUBT),
            ),
        )
        .values(
            status=case((starting, M.SENDING), else_=M.SUBMITTED),
            attempts=m.attempts + case((starting, 1), else_=0),
            lease_until=case((starting, bindparam("until", type_=m.lease_until.type)), else_=None),
            submitted_at=case(
                (starting, m.submitted_at), else_=bindparam("now", type_=m.submitted_at.type)
            ),
            transport=case(
                (starting, m.transport), else_=bindparam("transport", type_=m.transport.type)
            ),
            provider_id=case((starting, m.provider_id), else_=provider_id),
            segments=case((starting, m.segments), else_=segments),
            encoding=case((starting, m.encoding), else_=encoding),
        )
        .returning(m.id, m.status)
        if postgres
        else update(_messages)
        .where(match, ours, or_(m.status == M.SENDING, m.status == M.IN_DOUBT))  # no IN: many
        .values(
            status=M.SUBMITTED,
            lease_until=None,
            submitted_at=bindparam("now"),
            transport=bindparam("transport"),
            provider_id=provider_id,
            segments=segments,
            encoding=encoding,
        ),
    )


def claim(
    session: Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta
) -> list[int]:
    """Lease up to ``limit`` due messages to ``worker_id``, oldest due first; one statement."""
    ids = session.execute(
        statements(on_postgres(session)).claim,
        {"now": now, "limit": limit, "worker": worker_id, "until": now + lease},
    ).scalars()
    return sorted(ids)


def lease(
    session: Session,
    *,
    worker_id: str,
    ids: Sequence[int],
    sending: Sequence[int],
    lease_until: datetime,
) -> set[int]:
    """Lease messages this transaction took (``outbox.take``, still queued and locked) to
    ``worker_id``: those in ``sending`` straight to in flight (an attempt counted), the rest
    claimed; one statement, each row written once. Returns the ids now in flight."""
    if not ids:
        return set()
    rows = session.execute(
        statements(on_postgres(session)).lease,
        {"ids": list(ids), "sending": list(sending), "worker": worker_id, "until": lease_until},
    )
    return {mid for mid, status in rows if status == M.SENDING}


def start_sending(
    session: Session, *, worker_id: str, ids: Sequence[int], lease_until: datetime
) -> set[int]:
    """Mark a window as handed to the transport, only where the lease is still ours and nothing
    (an objection, an answer) cancelled it meanwhile; returns the ids that may go out."""
    if not ids:
        return set()
    return set(
        session.execute(
            statements(on_postgres(session)).start_sending,
            {"ids": list(ids), "worker": worker_id, "until": lease_until},
        ).scalars()
    )


def _held(worker_id: str, ids: Sequence[int]) -> tuple[ColumnElement[bool], ...]:
    """These messages, as far as they are still this worker's: claimed or in flight."""
    m = _messages.c
    return (m.id.in_(ids), m.claimed_by == worker_id, m.status.in_((M.CLAIMED, M.SENDING)))


def renew_lease(
    session: Session, *, worker_id: str, ids: Sequence[int], lease_until: datetime
) -> None:
    """Keep the rest of a batch ours while earlier windows are being sent."""
    if ids:
        session.execute(
            update(_messages).where(*_held(worker_id, ids)).values(lease_until=lease_until)
        )


def release(session: Session, *, worker_id: str, ids: Sequence[int], handed: bool) -> None:
    """Give messages back to the queue untouched: the transport was busy. ``handed`` undoes the
    attempt counted when they were marked as sending, since they never reached it."""
    if not ids:
        return
    session.execute(
        update(_messages)
        .where(*_held(worker_id, ids))
        .values(
            status=M.QUEUED,
            lease_until=None,
            attempts=_messages.c.attempts - 1 if handed else _messages.c.attempts,
        )
    )


def record_unsendable(
    session: Session,
    *,
    worker_id: str,
    skipped: Mapping[int, str],
    failed: Mapping[int, str],
) -> None:
    """Claimed messages that were not handed over: skipped (with the eligibility reason) or
    failed (their own data could not be opened or rendered)."""
    for status, reasons, column in (
        (M.SKIPPED, skipped, "skip_reason"),
        (M.FAILED, failed, "last_error"),
    ):
        if reasons:
            session.execute(
                update(_messages)
                .where(
                    _messages.c.id == bindparam("mid"),
                    _messages.c.claimed_by == worker_id,
                    _messages.c.status == M.CLAIMED,
                )
                .values({"status": status, "lease_until": None, column: bindparam("why")}),
                [{"mid": mid, "why": why[:200]} for mid, why in reasons.items()],
            )
