"""People, stored minimally (P9): name and phone encrypted, phone also keyed-hashed, locale."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tilfreds.db import Base


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(80), unique=True)
    phone_cipher: Mapped[bytes] = mapped_column(LargeBinary)  # context: people.phone/<index>
    name_cipher: Mapped[bytes] = mapped_column(LargeBinary)  # context: people.name/<index>
    locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    # processing restricted (P19, GDPR Art. 18): kept, but surveyed no more until lifted
    restricted_at: Mapped[datetime | None]
    # the number reached someone else (P17): no more surveys to it; a corrected number from the
    # case system is a new person
    wrong_number_at: Mapped[datetime | None]


class Interaction(Base):
    """A contact with the company that a survey rates (P4, P10): channel, reason, time, case ref.

    An interaction that is not surveyed (the person objected, it is too old to ask about) keeps
    only its id, channel, time and reasons: no person, no reason text, no case reference.
    """

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(120), unique=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(120))
    case_ref: Mapped[str] = mapped_column(String(120))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
    # the survey it was meant for, also when it was skipped (the funnel counts skips per survey)
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id"))
    skip_reasons: Mapped[str | None] = mapped_column(
        String(200)
    )  # comma-separated, objection first


class Suppression(Base):
    """A number that objected (P7), kept only as its keyed hash so it outlives erasure."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(80), unique=True)
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
