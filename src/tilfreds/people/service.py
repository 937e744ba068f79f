"""Find or register the person behind an interaction, record objections (P7)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, context
from tilfreds.people.models import Interaction, Person, Suppression


def person_for(
    session: Session, keys: Keys, *, phone_e164: str, name: str, locale: str, now: datetime
) -> Person:
    """The person with this number, registered if new. Existing name and locale are kept, so a
    correction the person made (P17) is not overwritten by the case system's copy."""
    indexes = keys.blind_indexes(phone_e164)
    person = session.execute(
        select(Person).where(Person.phone_index.in_(indexes))
    ).scalar_one_or_none()
    if person is not None:
        return person
    index = indexes[0]
    person = Person(
        phone_index=index,
        phone_cipher=keys.encrypt(phone_e164, context=context("people", "phone", index)),
        name_cipher=keys.encrypt(name.strip(), context=context("people", "name", index)),
        locale=locale,
        created_at=now,
    )
    session.add(person)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="person.registered",
        subject_type="person",
        subject_id=person.id,
        at=now,
        fields=["name", "phone", "locale"],
    )
    return person


def find_interaction(session: Session, external_id: str) -> Interaction | None:
    return session.execute(
        select(Interaction).where(Interaction.external_id == external_id)
    ).scalar_one_or_none()


def is_suppressed(session: Session, phone_index: str) -> bool:
    return (
        session.execute(
            select(Suppression.id).where(Suppression.phone_index == phone_index)
        ).first()
        is not None
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
    session: Session, *, phone_index: str, source: str, actor: str, now: datetime
) -> bool:
    """Put a number on the suppression list (P7). Returns False if it was already there."""
    if is_suppressed(session, phone_index):
        return False
    entry = Suppression(phone_index=phone_index, source=source, created_at=now)
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="suppression.added",
        subject_type="suppression",
        subject_id=entry.id,
        at=now,
        fields=["phone_index"],
    )
    return True
