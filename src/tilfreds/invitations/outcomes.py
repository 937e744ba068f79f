"""What the transport said about a window, recorded in one transaction (P3): submitted (with the
provider's ids for receipts), rejected (retried with back-off, or failed), or in doubt.

Fenced on ``claimed_by`` like every transition after the claim (see ``jobs``); locks in the one
order: invitations, message parts, then messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Boolean, ColumnElement, Table, bindparam, case, or_, select, update
from sqlalchemy.orm import Session

from tilfreds.invitations import receipts, settling
from tilfreds.invitations.jobs import (
    MAX_ATTEMPTS,
    RETRY_BASE,
    on_postgres,
    start_sending,
    statements,
)
from tilfreds.invitations.models import Message
from tilfreds.invitations.states import MessageStatus
from tilfreds.pipelined import run_together
from tilfreds.sms.transport import InDoubt, Rejected, Submitted

_messages = cast(Table, Message.__table__)
M = MessageStatus


@dataclass
class ReceiptsFirst:
    """Whether a receipt came before its window was recorded, the last time one was: then the
    next window settles its messages in its statements' sync (no second wait). A real SMSC's
    receipts mostly come seconds after the submit, and a window's settling costs about a tenth
    of its transaction (its update is planned afresh each time: ``settling.settle_steps``): so
    after a window with none, the next leaves it out and settles after the sync only the
    messages whose receipt did come first (seen from the parts' upsert)."""

    seen: bool = True


def record_outcomes(
    session: Session,
    *,
    worker_id: str,
    transport: str,
    outcomes: Mapping[int, Submitted | Rejected | InDoubt],
    now: datetime,
    resend_in_doubt: bool = False,
    start: Sequence[int] = (),
    lease_until: datetime | None = None,
    commit: bool = False,
    receipts_first: ReceiptsFirst | None = None,
) -> set[int]:
    """What the transport said for each message of a window this worker still holds: submitted
    (its ids recorded for receipts, and a receipt that came first applied), rejected (retried
    with back-off until MAX_ATTEMPTS when temporary, failed when permanent) or in doubt. The
    next window, ``start``, is marked in flight (leased until ``lease_until``; on PostgreSQL by
    the statement that records the submitted); returns its ids that may go out (as
    ``jobs.start_sending``). Locks in the one order: invitations, the parts, then messages.

    ``commit``: nothing else is written in the caller's transaction after this, so on
    PostgreSQL it may be committed here, in the same sync as the statements (one wait fewer a
    window); the caller's own commit then has nothing left to do."""
    assert lease_until is not None or not start
    submitted = {mid: o for mid, o in outcomes.items() if isinstance(o, Submitted)}
    postgres = on_postgres(session)
    hot = statements(postgres)
    ids = list(submitted)
    started: set[int] | None = None  # None: ``start`` is still to be marked
    same = {"worker": worker_id, "now": now, "transport": transport}
    rows = [(mid, o.provider_id[:64], o.segments, o.encoding[:8]) for mid, o in submitted.items()]
    if submitted and postgres:
        # the invitations, the parts, the messages, and those whose receipt came first settled
        # (seldom: mostly their parts are linked before), sent together in the lock order (one
        # wait; see ``tilfreds.pipelined``), with the COMMIT when nothing else is to be written
        rejected_or_in_doubt = len(submitted) < len(outcomes)
        n = len(start)
        inline = receipts_first is None or receipts_first.seen
        settle_steps = settling.settle_steps(session, ids, now=now) if inline else []
        _, linked, marked, *_ = run_together(
            session,
            [
                (hot.invitations_sent, {"ids": ids, "now": now}),
                (
                    receipts.link_statement(),
                    receipts.link_columns(submitted) | {"transport": transport, "created_at": now},
                ),
                (
                    hot.submitted,
                    {
                        "ids": ids + list(start),
                        "pids": [r[1] for r in rows] + [""] * n,
                        "segs": [r[2] for r in rows] + [0] * n,
                        "encs": [r[3] for r in rows] + [""] * n,
                        "starts": [0] * len(rows) + [1] * n,
                        "until": lease_until,
                        **same,
                    },
                ),
                *settle_steps,
            ],
            commit=commit and not rejected_or_in_doubt,
        )
        started = {mid for mid, status in marked if status == M.SENDING}
        came_first = receipts.came_first(linked)
        if receipts_first is not None:
            receipts_first.seen = bool(came_first)
        if came_first and not inline:  # after a commit in the sync: in a transaction of its own
            settling.settle(session, came_first, now=now)
    elif submitted:
        session.execute(hot.invitations_sent, {"ids": ids, "now": now})
        # messages with a receipt: their status from their parts
        early = receipts.link_parts(session, transport=transport, submitted=submitted, now=now)
        session.execute(
            hot.submitted,
            [{"mid": r[0], "pid": r[1], "seg": r[2], "enc": r[3], **same} for r in rows],
        )
        settling.settle(session, early, now=now)
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
    if started is None and start and lease_until is not None:
        started = start_sending(session, worker_id=worker_id, ids=start, lease_until=lease_until)
    return started or set()


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
