"""The send queue's state transitions, each a set-based statement (P3, P7).

queued -> claimed (leased by one worker; never handed over, so safe to requeue)
       -> sending (handed to the transport, one window at a time; a crash now leaves it in doubt)
       -> submitted | queued again (retry) | failed;  or skipped with a reason at any point before.

Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so many workers take disjoint batches.
Every transition after the claim is fenced on ``claimed_by``: a worker that was paused past its
lease finds its rows taken over and sends nothing twice. Provider I/O happens between
transactions, never inside one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Boolean, Table, bindparam, case, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.sms.transport import MessageRejected, Submitted

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
_messages = cast(Table, Message.__table__)
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
        .where(Message.id.in_(_expired(M.CLAIMED, now, limit)))
        .values(status=M.QUEUED, lease_until=None)
        .returning(Message.id)
    ).all()
    rows = session.execute(
        update(Message)
        .where(Message.id.in_(_expired(M.SENDING, now, limit)))
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


def claim(
    session: Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta
) -> list[int]:
    """Lease up to ``limit`` due messages to ``worker_id``, oldest due first; one statement."""
    due = (
        select(Message.id)
        .where(Message.status == M.QUEUED, Message.send_after <= now)
        .order_by(Message.status, Message.send_after, Message.id)  # the index's order
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    ids = session.execute(
        update(Message)
        .where(Message.id.in_(due))
        .values(status=M.CLAIMED, claimed_by=worker_id, lease_until=now + lease)
        .returning(Message.id)
    ).scalars()
    return sorted(ids)


def start_sending(
    session: Session, *, worker_id: str, ids: Sequence[int], lease_until: datetime
) -> set[int]:
    """Mark a window as handed to the transport, only where the lease is still ours and nothing
    (an objection, an answer) cancelled it meanwhile; returns the ids that may go out."""
    if not ids:
        return set()
    return set(
        session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.claimed_by == worker_id,
                Message.status == M.CLAIMED,
            )
            .values(status=M.SENDING, attempts=Message.attempts + 1, lease_until=lease_until)
            .returning(Message.id)
        ).scalars()
    )


def renew_lease(
    session: Session, *, worker_id: str, ids: Sequence[int], lease_until: datetime
) -> None:
    """Keep the rest of a batch ours while earlier windows are being sent."""
    if ids:
        session.execute(
            update(Message)
            .where(
                Message.id.in_(ids),
                Message.claimed_by == worker_id,
                Message.status.in_((M.CLAIMED, M.SENDING)),
            )
            .values(lease_until=lease_until)
        )


def release(session: Session, *, worker_id: str, ids: Sequence[int], handed: bool) -> None:
    """Give messages back to the queue untouched: the transport was busy. ``handed`` undoes the
    attempt counted when they were marked as sending, since they never reached it."""
    if not ids:
        return
    session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.claimed_by == worker_id,
            Message.status.in_((M.CLAIMED, M.SENDING)),
        )
        .values(
            status=M.QUEUED,
            lease_until=None,
            attempts=Message.attempts - 1 if handed else Message.attempts,
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
    outcomes: Mapping[int, Submitted | MessageRejected],
    now: datetime,
) -> None:
    """What the transport said for each message of a window this worker still holds: submitted,
    or rejected - retried with back-off until MAX_ATTEMPTS when temporary, failed when permanent.
    Invitations are updated before their messages (the lock order)."""
    submitted = {mid: o for mid, o in outcomes.items() if isinstance(o, Submitted)}
    rejected = {mid: o for mid, o in outcomes.items() if isinstance(o, MessageRejected)}
    ours = (
        _messages.c.id == bindparam("mid"),
        _messages.c.claimed_by == worker_id,
        or_(
            _messages.c.status == M.SENDING, _messages.c.status == M.IN_DOUBT
        ),  # no IN: executemany
    )
    if submitted:
        session.execute(
            update(Invitation)
            .where(
                Invitation.id.in_(
                    select(Message.invitation_id).where(
                        Message.id.in_(list(submitted)),
                        Message.purpose == MessagePurpose.INVITATION,
                    )
                ),
                Invitation.status == InvitationStatus.PENDING,
            )
            .values(status=InvitationStatus.SENT, sent_at=now)
        )
        session.execute(
            update(_messages)
            .where(*ours)
            .values(
                status=M.SUBMITTED,
                lease_until=None,
                submitted_at=now,
                transport=transport,
                provider_id=bindparam("pid"),
            ),
            [{"mid": mid, "pid": o.provider_id[:64]} for mid, o in submitted.items()],
        )
    if rejected:
        session.execute(
            update(_messages)
            .where(*ours)
            .values(
                status=case(
                    (
                        bindparam("permanent", type_=Boolean)
                        | (_messages.c.attempts >= MAX_ATTEMPTS),
                        M.FAILED,
                    ),
                    else_=M.QUEUED,
                ),
                lease_until=None,
                last_error=bindparam("why"),
                send_after=bindparam("retry_at"),
            ),
            [
                {
                    "mid": mid,
                    "permanent": o.permanent,
                    "why": str(o)[:200],
                    "retry_at": now + RETRY_BASE * 2 ** (_attempts(session, mid) - 1),
                }
                for mid, o in rejected.items()
            ],
        )


def _attempts(session: Session, message_id: int) -> int:
    """Rejections are rare: reading the count per rejected message keeps the common path lean."""
    return max(
        1, session.execute(select(Message.attempts).where(Message.id == message_id)).scalar_one()
    )
