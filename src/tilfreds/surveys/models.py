"""Surveys and their immutable published versions. A version holds the whole definition (its
questions, texts and SMS texts) as JSON; answers point at the version they answered (P4), so a
survey can change without touching past answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tilfreds.db import Base


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # the numeric sender its messages go from, so replies come back to it; empty: the
    # installation's TILFREDS_SMS_SENDER
    sender: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    # reminders after the invitation (P2): how many, and how long after it (and each other)
    reminder_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reminder_after_hours: Mapped[int] = mapped_column(Integer, default=72, server_default="72")
    # overrides of the operator-wide rules for this survey; None: the setting applies
    daily_quota: Mapped[int | None] = mapped_column(Integer)
    sampling_rate: Mapped[float | None] = mapped_column(Float)
    # the identity confirmation its newest version asks for (P2): read where answers are taken,
    # whatever version a form names
    identity: Mapped[str] = mapped_column(String(16), default="none", server_default="none")


class SurveyVersion(Base):
    """One published version: written once, never updated."""

    __tablename__ = "survey_versions"
    __table_args__ = (UniqueConstraint("survey_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime]
