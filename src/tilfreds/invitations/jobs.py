"""The send job's database steps: claim due messages, prepare them, record the outcome.

Claiming takes a lease: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets many workers claim disjoint
batches; a message whose worker died is claimed again once its lease has run out (at-least-once
across a crash, exactly once otherwise). Provider I/O happens between transactions, never inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tilfreds.crypto import Keys
from tilfreds.invitations.eligibility import MessageFacts, Skip, may_send
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.texts import invitation_sms
from tilfreds.people import service as people
from tilfreds.people.models import Person
from tilfreds.sms.transport import OutboundSms

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class SendContext:
    public_url: str
    controller: str
    sender: str


def claim_due(
    session: Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta
) -> list[int]:
    """Ids of up to ``limit`` due messages, now leased to ``worker_id``."""
    due = or_(
        (Message.status == "queued") & (Message.send_after <= now),
        (Message.status == "sending") & (Message.lease_until < now),
    )
    ids = list(
        session.execute(
            select(Message.id)
            .where(due)
            .order_by(Message.send_after, Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if ids:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(
                status="sending",
                claimed_by=worker_id,
                lease_until=now + lease,
                attempts=Message.attempts + 1,
            )
        )
    return ids


def prepare(
    session: Session, keys: Keys, ids: list[int], *, ctx: SendContext, now: datetime
) -> list[OutboundSms]:
    """The SMS for each claimed message that may still go out; the rest are skipped with a reason
    (eligibility is decided again here, at send time)."""
    rows = session.execute(
        select(Message, Invitation, Person)
        .join(Invitation, Invitation.id == Message.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .where(Message.id.in_(ids))
        .order_by(Message.id)
    ).all()
    out: list[OutboundSms] = []
    for message, invitation, person in rows:
        facts = MessageFacts(
            invitation_status=invitation.status,
            expires_at=invitation.expires_at,
            suppressed=people.is_suppressed(session, person.phone_index),
        )
        decision = may_send(facts, now=now)
        if isinstance(decision, Skip):
            message.status, message.skip_reason, message.lease_until = (
                "skipped",
                decision.reason,
                None,
            )
            continue
        link = f"{ctx.public_url.rstrip('/')}/s/{invitation.code}"
        body = invitation_sms(
            locale=person.locale,
            name=keys.decrypt(person.name_cipher),
            controller=ctx.controller,
            link=link,
        )
        out.append(
            OutboundSms(
                to=keys.decrypt(person.phone_cipher),
                body=body,
                sender=ctx.sender,
                reference=str(message.id),
            )
        )
    return out


def mark_sent(
    session: Session,
    *,
    message_id: int,
    worker_id: str,
    transport: str,
    provider_id: str,
    now: datetime,
) -> None:
    message = session.get(Message, message_id)
    if message is None or message.claimed_by != worker_id:
        return  # lease lost to another worker; its outcome stands
    message.status, message.sent_at, message.lease_until = "sent", now, None
    message.transport, message.provider_id = transport, provider_id
    invitation = session.get(Invitation, message.invitation_id)
    if invitation is not None and invitation.status == "pending":
        invitation.status, invitation.sent_at = "sent", now


def mark_failed(
    session: Session,
    *,
    message_id: int,
    worker_id: str,
    error: str,
    retryable: bool,
    now: datetime,
) -> None:
    """Back off and retry a retryable failure (never drop it); give up after MAX_ATTEMPTS."""
    message = session.get(Message, message_id)
    if message is None or message.claimed_by != worker_id:
        return
    message.last_error, message.lease_until = error[:200], None
    if retryable and message.attempts < MAX_ATTEMPTS:
        message.status = "queued"
        message.send_after = now + timedelta(seconds=30 * 2 ** (message.attempts - 1))
    else:
        message.status = "failed"
