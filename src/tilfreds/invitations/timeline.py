"""What became of one interaction: surveyed or skipped (with why), its invitation's state, and
every message sent or waiting for it, with the times and errors an operator needs (``in_doubt``
included) and what the provider said: its ids, segments, encoding, error code and the receipts'
verdict (P3). Read-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.errors import NotFound
from tilfreds.invitations.models import Invitation, Message, MessagePart
from tilfreds.people.models import Interaction


@dataclass(frozen=True)
class MessageState:
    id: int
    purpose: str
    status: str
    attempts: int
    created_at: datetime
    send_after: datetime
    submitted_at: datetime | None
    provider_id: str | None  # the first of provider_ids (kept for older clients)
    skip_reason: str | None
    last_error: str | None
    provider_ids: list[str]  # one per segment over SMPP, one per message over most HTTP APIs
    segments: int | None
    encoding: str | None  # GSM-7 or UCS-2
    error_code: str | None  # the provider's, from a rejection or a failed receipt
    delivered_at: datetime | None
    failed_at: datetime | None  # failed or expired


@dataclass(frozen=True)
class InteractionState:
    external_id: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    outcome: str  # scheduled | skipped
    skip_reasons: list[str]
    invitation_status: str | None
    expires_at: datetime | None
    opened_at: datetime | None  # a person opened the link (its beacon, an answer, a decline)
    messages: list[MessageState]


def interaction_state(session: Session, external_id: str) -> InteractionState:
    row = session.execute(
        select(
            Interaction,
            Invitation.id,
            Invitation.status,
            Invitation.expires_at,
            Invitation.opened_at,
        )
        .outerjoin(Invitation, Invitation.interaction_id == Interaction.id)
        .where(Interaction.external_id == external_id)
    ).first()
    if row is None:
        raise NotFound("no interaction with that external_id", field="external_id")
    interaction, invitation_id, invitation_status, expires_at, opened_at = row
    messages = (
        session.execute(
            select(Message).where(Message.invitation_id == invitation_id).order_by(Message.id)
        )
        .scalars()
        .all()
        if invitation_id is not None
        else []
    )
    parts: dict[int | None, list[str]] = {}
    for message_id, provider_id in session.execute(
        select(MessagePart.message_id, MessagePart.provider_id)
        .where(MessagePart.message_id.in_([m.id for m in messages]))
        .order_by(MessagePart.message_id, MessagePart.part, MessagePart.id)
    ):
        parts.setdefault(message_id, []).append(provider_id)
    return InteractionState(
        external_id=interaction.external_id,
        channel=interaction.channel,
        occurred_at=interaction.occurred_at,
        received_at=interaction.created_at,
        outcome="skipped" if interaction.skip_reasons else "scheduled",
        skip_reasons=interaction.skip_reasons.split(",") if interaction.skip_reasons else [],
        invitation_status=invitation_status,
        expires_at=expires_at,
        opened_at=opened_at,
        messages=[
            MessageState(
                id=m.id,
                purpose=m.purpose,
                status=m.status,
                attempts=m.attempts,
                created_at=m.created_at,
                send_after=m.send_after,
                submitted_at=m.submitted_at,
                provider_id=m.provider_id,
                skip_reason=m.skip_reason,
                last_error=m.last_error,
                provider_ids=parts.get(m.id, []),
                segments=m.segments,
                encoding=m.encoding,
                error_code=m.error_code,
                delivered_at=m.delivered_at,
                failed_at=m.failed_at,
            )
            for m in messages
        ],
    )
