"""Invitations (one per surveyed interaction) and messages (the database is the queue).

A message is not owned by an invitation: it has a purpose and optional links, so identity codes,
rights notices and objection confirmations go through the same queue (convention 14).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tilfreds.db import Base
from tilfreds.invitations.states import (
    InvitationStatus,
    MessagePurpose,
    MessageStatus,
    enum_values,
)


def _enum(enum: type[InvitationStatus | MessagePurpose | MessageStatus], name: str) -> Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint on both databases."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=enum_values,
        validate_strings=True,
    )


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_status_expires_at", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[InvitationStatus] = mapped_column(_enum(InvitationStatus, "invitation_status"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reminders_queued_at: Mapped[datetime | None]  # its reminders were queued (``reminders``)
    # a person first opened the link: the page's beacon or a POST from it, never a GET
    opened_at: Mapped[datetime | None]


class Message(Base):
    """One SMS to send. Exists iff its transaction committed; claimed by a worker with a lease."""

    __tablename__ = "messages"
    __table_args__ = (
        # the claim: WHERE status = 'queued' AND send_after <= now ORDER BY send_after, id
        Index("ix_messages_status_send_after_id", "status", "send_after", "id"),
        # leases that ran out: WHERE status IN ('claimed', 'sending') AND lease_until < now
        Index("ix_messages_status_lease_until", "status", "lease_until"),
        CheckConstraint("person_id IS NOT NULL OR to_cipher IS NOT NULL", name="has_recipient"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[MessagePurpose] = mapped_column(_enum(MessagePurpose, "message_purpose"))
    status: Mapped[MessageStatus] = mapped_column(_enum(MessageStatus, "message_status"))
    # the recipient: a person, or (for a number we hold no person for) a sealed number
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True
    )
    to_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)  # context: messages.to/<id>
    # a text that cannot be rendered again at send time (a one-time code); scrubbed once sent
    body_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)  # context: messages.body/<id>
    send_after: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times handed to the transport
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    transport: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    skip_reason: Mapped[str | None] = mapped_column(String(200))  # comma-joined, objection first
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    # what the provider said about it: segments sent, their encoding, its error code (a
    # rejection's or a failed receipt's), and when the receipts made it final
    segments: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(8))
    error_code: Mapped[str | None] = mapped_column(String(40))
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # failed or expired, by a rejection or a receipt


class MessagePart(Base):
    """One id a provider gave us for a message (one per segment over SMPP, one per message over
    most HTTP APIs), with the state its receipts reported. A receipt for an id not (yet) known
    is kept here without a message: SMPP can deliver it before the submit response is recorded;
    it is applied when the id shows up, and otherwise stays for reconciliation."""

    __tablename__ = "message_parts"
    __table_args__ = (UniqueConstraint("transport", "provider_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transport: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    part: Mapped[int | None] = mapped_column(Integer)  # 0-based segment number
    state: Mapped[str | None] = mapped_column(String(12))  # the best receipt state so far
    error_code: Mapped[str | None] = mapped_column(String(40))
    state_at: Mapped[datetime | None]  # when the network says it happened (or we heard)
    created_at: Mapped[datetime]  # when we first heard of the id: unmatched ones age from it


class InboundSeen(Base):
    """Inbound messages already handled, by the provider's id: providers retry callbacks for
    hours, and a retried STOPP or answer must count once. Holds no personal data."""

    __tablename__ = "inbound_seen"
    __table_args__ = (UniqueConstraint("transport", "provider_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transport: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
