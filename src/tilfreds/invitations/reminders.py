"""Reminders (P2): after an invitation went out, each survey's ``reminder_count`` reminders,
``reminder_after_hours`` apart, queued as ``reminder`` messages by the worker's sweep.

Set-based and idempotent: one statement marks a batch of sent invitations as reminded
(``reminders_queued_at``, taken with ``FOR UPDATE SKIP LOCKED``, so two workers mark disjoint
invitations, and one that waited on a row sees it marked and leaves it), one statement inserts
their reminders. A reminder is never due after its invitation expires. The send window is applied
when each one is sent, like any survey message; at that moment eligibility is decided again, so
a reminder stops at answer, decline, objection, restriction or expiry (and an erased person's
messages are deleted with them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, any_, func, insert, select, update
from sqlalchemy.orm import Session

from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.surveys.models import Survey

_invitations = cast(Table, Invitation.__table__)


def queue_reminders(session: Session, *, now: datetime, limit: int = 5000) -> int:
    """Queue the reminders of up to ``limit`` sent invitations not yet reminded; returns how
    many reminders were queued."""
    i = _invitations.c
    due = (
        select(i.id)
        .where(i.status == InvitationStatus.SENT, i.reminders_queued_at.is_(None))
        .order_by(i.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    marked = list(
        session.execute(
            update(_invitations)
            # on PostgreSQL the subquery runs once and rows are found by primary key
            .where(i.id == any_(func.array(due)) if postgres else i.id.in_(due))
            .where(i.status == InvitationStatus.SENT, i.reminders_queued_at.is_(None))
            .values(reminders_queued_at=now)
            .returning(i.id)
        ).scalars()
    )
    if not marked:
        return 0
    rows = session.execute(
        select(
            Invitation.id,
            Invitation.person_id,
            Invitation.sent_at,
            Invitation.expires_at,
            Survey.reminder_count,
            Survey.reminder_after_hours,
        )
        .join(Survey, Survey.id == Invitation.survey_id)
        .where(Invitation.id.in_(marked), Survey.reminder_count > 0)
        .order_by(Invitation.id)
    ).all()
    reminders = [
        {
            "purpose": MessagePurpose.REMINDER,
            "status": MessageStatus.QUEUED,
            "person_id": person_id,
            "invitation_id": invitation_id,
            "send_after": due_at,
            "attempts": 0,
            "created_at": now,
        }
        for invitation_id, person_id, sent_at, expires_at, count, hours in rows
        for n in range(1, count + 1)
        if (due_at := (sent_at or now) + timedelta(hours=hours * n)) < expires_at
    ]
    if reminders:
        session.execute(insert(Message), reminders)
    return len(reminders)
