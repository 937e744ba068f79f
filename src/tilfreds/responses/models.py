"""A response per invitation, its answers, and whether the respondent allowed contact (P5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tilfreds.db import Base


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), unique=True
    )
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    submitted_at: Mapped[datetime]
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)

    answers: Mapped[list[Answer]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("response_id", "question_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), index=True
    )
    question_key: Mapped[str] = mapped_column(String(40))
    value_int: Mapped[int | None] = mapped_column(Integer)
    value_text: Mapped[str | None] = mapped_column(Text)
