"""The send job's database steps: claim due messages, prepare them, record the outcome.

Claiming takes a lease: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL lets many workers claim disjoint
batches; a message whose worker died is claimed again once its lease has run out (at-least-once
across a crash, exactly once otherwise). Provider I/O happens between transactions, never inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tilfreds.crypto import Keys, context
from tilfreds.invitations.eligibility import MessageFacts, Skip, may_send
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.texts import invitation_sms
from tilfreds.people import service as people
from tilfreds.people.models import Person
from tilfreds.sms.transport import OutboundSms, Submitted, TransportError

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class SendContext:
    public_url: str
    controller: str
    sender: str


def claim_due(
    session: Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta
) -> list[int]:
    """Ids of up to ``limit`` due messages, now leased to ``worker_id``. Messages whose lease ran
    out (their worker died) come first; each query is a plain range on (status, ...) so it stays
    cheap however long the history of sent messages grows."""
    expired = list(
        session.execute(
            select(Message.id)
            .where(Message.status == "sending", Message.lease_until < now)
            .order_by(Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    queued = (
        list(
            session.execute(
                select(Message.id)
                .where(Message.status == "queued", Message.send_after <= now)
                .order_by(Message.send_after, Message.id)
                .limit(limit - len(expired))
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if len(expired) < limit
        else []
    )
    ids = expired + queued
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
    phones = {
        person.id: keys.decrypt(
            person.phone_cipher, context=context("people", "phone", person.phone_index)
        )
        for _message, _invitation, person in rows
    }
    # by number, under every configured key: an objection may predate a key rotation (P7)
    suppressed = people.suppressed_numbers(session, keys, phones.values())
    out: list[OutboundSms] = []
    for message, invitation, person in rows:
        if message.attempts > MAX_ATTEMPTS:  # its workers keep dying: stop, and say so
            message.status, message.lease_until = "failed", None
            message.last_error = f"no outcome recorded after {MAX_ATTEMPTS} attempts"
            continue
        facts = MessageFacts(
            invitation_status=invitation.status,
            expires_at=invitation.expires_at,
            suppressed=phones[person.id] in suppressed,
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
            name=keys.decrypt(
                person.name_cipher, context=context("people", "name", person.phone_index)
            ),
            controller=ctx.controller,
            link=link,
        )
        out.append(
            OutboundSms(
                to=phones[person.id],
                body=body,
                sender=ctx.sender,
                reference=str(message.id),
            )
        )
    return out


def record_outcomes(
    session: Session,
    *,
    worker_id: str,
    transport: str,
    outcomes: Mapping[int, Submitted | TransportError],
    now: datetime,
) -> None:
    """Record what the transport said for each message this worker still holds: sent, or a
    failure that is retried with back-off (never dropped) until MAX_ATTEMPTS. A message whose lease
    passed to another worker is left to that worker."""
    if not outcomes:
        return
    rows = session.execute(
        select(Message, Invitation)
        .join(Invitation, Invitation.id == Message.invitation_id)
        .where(Message.id.in_(list(outcomes)), Message.claimed_by == worker_id)
    ).all()
    for message, invitation in rows:
        outcome = outcomes[message.id]
        message.lease_until = None
        if isinstance(outcome, Submitted):
            message.status, message.sent_at = "sent", now
            message.transport, message.provider_id = transport, outcome.provider_id
            if invitation.status == "pending":
                invitation.status, invitation.sent_at = "sent", now
        elif outcome.retryable and message.attempts < MAX_ATTEMPTS:
            message.status, message.last_error = "queued", str(outcome)[:200]
            message.send_after = now + timedelta(seconds=30 * 2 ** (message.attempts - 1))
        else:
            message.status, message.last_error = "failed", str(outcome)[:200]
