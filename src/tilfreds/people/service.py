"""The suppression list: numbers that objected (P7), kept as keyed hashes only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys
from tilfreds.db import insert_new
from tilfreds.people.models import Person, Suppression


def is_suppressed(session: Session, phone_indexes: Sequence[str]) -> bool:
    """Whether the number behind these blind indexes (one per configured key) objected."""
    return bool(
        session.execute(select(exists().where(Suppression.phone_index.in_(phone_indexes)))).scalar()
    )


def people_with(session: Session, phone_indexes: Sequence[str]) -> list[int]:
    """Ids of the person rows for this number (one, or two halfway through a key rotation)."""
    return list(
        session.execute(
            select(Person.id).where(Person.phone_index.in_(phone_indexes)).order_by(Person.id)
        ).scalars()
    )


def suppressed_numbers(session: Session, keys: Keys, numbers: Iterable[str]) -> set[str]:
    """Which of these numbers objected (P7), under any configured key: an objection recorded
    with a previous key matches until ``tilfreds keys rotate`` has moved it, and one whose number
    is held nowhere matches as long as its key is configured."""
    number_of = {index: number for number in numbers for index in keys.blind_indexes(number)}
    if not number_of:
        return set()
    found = session.execute(
        select(Suppression.phone_index).where(Suppression.phone_index.in_(number_of))
    ).scalars()
    return {number_of[index] for index in found}


def object_to_processing(
    session: Session, *, phone_indexes: Sequence[str], source: str, actor: str, now: datetime
) -> bool:
    """Put a number on the suppression list (P7), under the current key (the first index).
    Returns False if it was already there; safe against a concurrent objection."""
    if is_suppressed(session, phone_indexes):
        return False
    added = session.execute(
        insert_new(session, Suppression, "phone_index")
        .values(phone_index=phone_indexes[0], source=source, created_at=now)
        .returning(Suppression.id)
    ).scalar()
    if added is None:
        return False
    audit.record(
        session,
        actor=actor,
        action="suppression.added",
        subject_type="suppression",
        subject_id=added,
        at=now,
        fields=["phone_index"],
    )
    return True
