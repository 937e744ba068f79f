"""Invitations (one per interaction) and messages (the database is the queue)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tilfreds.db import Base


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    # pending -> sent -> answered | expired; or closed early (declined, objected)
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class Message(Base):
    """One SMS to send. Exists iff its transaction committed; claimed by a worker with a lease."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_send_after", "status", "send_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    # queued -> sending -> sent; or skipped (with reason) / failed (with error)
    status: Mapped[str] = mapped_column(String(10))
    send_after: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    transport: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
