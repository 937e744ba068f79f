"""Surveys and their questions. Question wording comes from the locale catalogs by kind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tilfreds.db import Base


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # reminders after the invitation (P2): how many, and how long after it (and each other)
    reminder_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reminder_after_hours: Mapped[int] = mapped_column(Integer, default=72, server_default="72")
    # overrides of the operator-wide rules for this survey; None: the setting applies
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    sampling_rate: Mapped[float | None] = mapped_column(Float)

    questions: Mapped[list[Question]] = relationship(
        order_by="Question.position", cascade="all, delete-orphan", lazy="selectin"
    )


class Question(Base):
    __tablename__ = "survey_questions"
    __table_args__ = (UniqueConstraint("survey_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
