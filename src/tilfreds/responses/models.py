"""A response per invitation, its answers, and whether the respondent allowed contact (P5).

A response outlives the link to its person (convention 14): it keeps the survey, the channel and
reason it rates, the language and its scores, while the links to the invitation and interaction
can be cut (anonymisation, erasure) without deleting statistics that no longer identify anyone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tilfreds.db import Base


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="SET NULL"), unique=True
    )
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL"), index=True
    )
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    # the version answered (P4); nullable only so rows from before versions stay valid
    survey_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_versions.id"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(8))
    submitted_at: Mapped[datetime]
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    notice_version: Mapped[str | None] = mapped_column(String(40))  # the notice shown (P5)

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
