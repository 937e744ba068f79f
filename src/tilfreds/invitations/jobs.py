"""The send queue's state transitions, each a set-based statement (P3, P7).

queued -> claimed (leased by one worker; never handed over, so safe to requeue)
       -> sending (handed to the transport, one window at a time; a crash now leaves it in doubt)
       -> submitted | queued again (retry) | failed;  or skipped with a reason at any point before.
(The worker takes a batch with ``outbox.take`` and ``lease``: its first window goes from queued
straight to sending in that transaction, the rest to claimed.)

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so many workers take disjoint batches.
Every transition after the claim is fenced on ``claimed_by``: a worker that was paused past its
lease finds its rows taken over and sends nothing twice. Provider I/O happens between
transactions, never inside one. The worker's statements are Core, on the table: no ORM object is
ever loaded here, so the ORM's bulk-update bookkeeping would only cost time (see
docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.selectable import ScalarSelect

from tilfreds.db import ids_in
from tilfreds.invitations import receipts
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.sms.transport import InDoubt, Rejected, Submitted

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
        .where(Message.status == status, Message.lease_until < now)
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _picked(
    session: Session, column: ColumnElement[int] | QueryableAttribute[int], ids: ScalarSelect[int]
) -> ColumnElement[bool]:
    """``column IN (subquery)``; on PostgreSQL ``column = ANY(ARRAY(subquery))``: the subquery
    runs once, first, and the rows are then found by primary key. (Left an ``IN``, the planner
    may hash-join it against a scan of the whole queue.)"""
    if _postgres(session):
        return column == any_(func.array(ids))
    return column.in_(ids)


@dataclass(frozen=True)
class _Hot:
    """The worker's statements, built once per kind of database with bound parameters: each pass
    only binds values, instead of building, compiling and keying new statements."""

    claim: Any
    lease: Any
    start_sending: Any
    invitations_sent: Any
    submitted: Any


@cache
def _hot(postgres: bool) -> _Hot:
    m, i = _messages.c, _invitations.c
    due = (
        select(m.id)
        .where(m.status == M.QUEUED, m.send_after <= bindparam("now"))
        .order_by(m.status, m.send_after, m.id)  # the index's order
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
    if postgres:  # one statement a window, each row's provider id joined from two arrays
        given = func.unnest(
            bindparam("ids", type_=ARRAY(Integer)),
            bindparam("pids", type_=ARRAY(String)),
            bindparam("segs", type_=ARRAY(Integer)),
            bindparam("encs", type_=ARRAY(String)),
        )
        v = given.table_valued("mid", "pid", "seg", "enc").render_derived(name="v")
        match, provider_id, segments, encoding = m.id == v.c.mid, v.c.pid, v.c.seg, v.c.enc
    else:  # an executemany: SQLite runs in this process, a row costs no round trip
        match = m.id == bindparam("mid")
        provider_id, segments, encoding = bindparam("pid"), bindparam("seg"), bindparam("enc")
    return _Hot(
        claim=update(_messages)
        .where(picked)
        .values(status=M.CLAIMED, claimed_by=bindparam("worker"), lease_until=bindparam("until"))
        .returning(m.id),
        lease=update(_messages)
        .where(ids_in(postgres, m.id), m.status == M.QUEUED)
        .values(
            status=case((ids_in(postgres, m.id, "sending"), M.SENDING), else_=M.CLAIMED),
            attempts=m.attempts + case((ids_in(postgres, m.id, "sending"), 1), else_=0),
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
        submitted=update(_messages)
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
        _hot(_postgres(session)).claim,
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
        _hot(_postgres(session)).lease,
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
            _hot(_postgres(session)).start_sending,
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


def record_outcomes(
    session: Session,
    *,
    worker_id: str,
    transport: str,
    outcomes: Mapping[int, Submitted | Rejected | InDoubt],
    now: datetime,
    resend_in_doubt: bool = False,
) -> None:
    """What the transport said for each message of a window this worker still holds: submitted
    (its ids recorded for receipts, and a receipt that came first applied), rejected (retried
    with back-off until MAX_ATTEMPTS when temporary, failed when permanent) or in doubt.
    Locks in the one order: invitations, the parts, then their messages."""
    submitted = {mid: o for mid, o in outcomes.items() if isinstance(o, Submitted)}
    if submitted:
        postgres = _postgres(session)
        hot = _hot(postgres)
        ids = list(submitted)
        session.execute(hot.invitations_sent, {"ids": ids, "now": now})
        early = receipts.link_parts(session, transport=transport, submitted=submitted, now=now)
        same = {"worker": worker_id, "now": now, "transport": transport}
        rows = [
            (mid, o.provider_id[:64], o.segments, o.encoding[:8]) for mid, o in submitted.items()
        ]
        session.execute(
            hot.submitted,
            {
                "ids": ids,
                "pids": [r[1] for r in rows],
                "segs": [r[2] for r in rows],
                "encs": [r[3] for r in rows],
                **same,
            }
            if postgres
            else [{"mid": r[0], "pid": r[1], "seg": r[2], "enc": r[3], **same} for r in rows],
        )
        receipts.settle(session, early, now=now)
    _record_rejected(
        session,
        worker_id=worker_id,
        rejected={mid: o for mid, o in outcomes.items() if isinstance(o, Rejected)},
        now=now,
    )
    in_doubt = {mid: o for mid, o in outcomes.items() if isinstance(o, InDoubt)}
    if in_doubt:
        mark_in_doubt(
            session, worker_id=worker_id, reasons=in_doubt, resend=resend_in_doubt, now=now
        )


def _ours(worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """A message of an executemany (``mid``) as far as it is still this worker's, in flight."""
    m = _messages.c
    return (
        m.id == bindparam("mid"),
        m.claimed_by == worker_id,
        or_(m.status == M.SENDING, m.status == M.IN_DOUBT),  # no IN: executemany
    )


def _record_rejected(
    session: Session, *, worker_id: str, rejected: Mapping[int, Rejected], now: datetime
) -> None:
    if not rejected:
        return
    m = _messages.c
    final = bindparam("permanent", type_=Boolean) | (m.attempts >= MAX_ATTEMPTS)
    session.execute(
        update(_messages)
        .where(*_ours(worker_id))
        .values(
            status=case((final, M.FAILED), else_=M.QUEUED),
            lease_until=None,
            last_error=bindparam("why"),
            error_code=bindparam("code"),
            failed_at=case((final, bindparam("now")), else_=None),
            send_after=bindparam("retry_at"),
        ),
        [
            {
                "mid": mid,
                "permanent": o.permanent,
                "why": o.reason[:200],
                "code": o.error_code[:40] if o.error_code else None,
                "now": now,
                "retry_at": now + RETRY_BASE * 2 ** (_attempts(session, mid) - 1),
            }
            for mid, o in rejected.items()
        ],
    )


def mark_in_doubt(
    session: Session,
    *,
    worker_id: str,
    reasons: Mapping[int, InDoubt],
    resend: bool,
    now: datetime,
) -> None:
    """Messages handed over whose answer was lost: ``in_doubt`` at once (or queued again when
    resending is safe or wanted); in doubt ``MAX_ATTEMPTS`` times, failed instead of looping."""
    m = _messages.c
    give_up = m.attempts >= MAX_ATTEMPTS
    session.execute(
        update(_messages)
        .where(*_ours(worker_id))
        .values(
            status=case((give_up, M.FAILED), else_=M.QUEUED if resend else M.IN_DOUBT),
            lease_until=None,
            last_error=bindparam("why"),
            failed_at=case((give_up, bindparam("now")), else_=None),
        ),
        [{"mid": mid, "why": o.reason[:200], "now": now} for mid, o in reasons.items()],
    )


def _attempts(session: Session, message_id: int) -> int:
    """Rejections are rare: reading the count per rejected message keeps the common path lean."""
    return max(
        1, session.execute(select(Message.attempts).where(Message.id == message_id)).scalar_one()
    )
