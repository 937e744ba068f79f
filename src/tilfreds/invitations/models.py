"""Invitations (one per surveyed interaction) and messages (the database is the queue).

A message is not owned by an invitation: it has a purpose and optional links, so identity codes,
rights notices and objection confirmations go through the same queue (convention 14).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    literal_column,
    text,
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
    __table_args__ = (
        Index("ix_invitations_status_expires_at", "status", "expires_at"),
        # the wrong-number feed: WHERE wrong_number_at >= since ORDER BY wrong_number_at, id
        Index("ix_invitations_wrong_number_at", "wrong_number_at", "id"),
    )

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
    # identity confirmation before answers (P2, ``responses.identity``): when it succeeded, the
    # wrong answers since the last lock and the lock they earned, and the one-time code (its
    # keyed hash only), when it expires, when the last was sent and how many were
    identity_confirmed_at: Mapped[datetime | None]
    identity_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    identity_locked_until: Mapped[datetime | None]
    identity_code_hash: Mapped[str | None] = mapped_column(String(80))
    identity_code_expires_at: Mapped[datetime | None]
    identity_code_sent_at: Mapped[datetime | None]
    identity_codes_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the respondent said this is not their number (P17): reported to the case system
    wrong_number_at: Mapped[datetime | None]


DUE_SQL = "status = 'queued'"
LEASED_SQL = "status IN ('claimed', 'sending')"


def _where(condition: str) -> dict[str, Any]:
    return {f"{dialect}_where": text(condition) for dialect in ("postgresql", "sqlite")}


# a status as a literal in SQL, for the queries the partial indexes serve
QUEUED: Any = literal_column("'queued'")


def held(status: MessageStatus) -> Any:
    """``status`` (claimed or sending) as a literal, for the look-up of leases that ran out."""
    assert status in (MessageStatus.CLAIMED, MessageStatus.SENDING)
    return literal_column(f"'{status.value}'")


class Message(Base):
    """One SMS to send. Exists iff its transaction committed; claimed by a worker with a lease."""

    __tablename__ = "messages"
    __table_args__ = (
        # partial indexes: a message enters each only in the states its query looks for, so
        # the send worker's writes (leased, in flight, submitted) insert fewer index entries;
        # their queries name the status as a literal (``QUEUED``, ``held``), which a generic
        # plan of a prepared statement needs to prove it may use them
        # the claim: WHERE status = 'queued' AND send_after <= now ORDER BY send_after, id
        Index("ix_messages_due", "send_after", "id", **_where(DUE_SQL)),
        # leases that ran out: WHERE status = 'claimed' | 'sending' AND lease_until < now
        Index("ix_messages_leased", "lease_until", **_where(LEASED_SQL)),
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
