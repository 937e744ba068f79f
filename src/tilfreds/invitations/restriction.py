"""Restriction of processing (P19, GDPR Art. 18), the send side: a restricted person is kept but
surveyed no more (no invitation at intake, none of their survey messages sent) until it is lifted.
Their pending survey messages are cancelled at once; any a worker already holds are skipped when
it re-checks them before sending. Messages the person asked for (a code, a notice) still go.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.invitations.models import Message
from tilfreds.invitations.outbox import SURVEY_PURPOSES
from tilfreds.invitations.service import PENDING_MESSAGES
from tilfreds.invitations.states import MessageStatus
from tilfreds.people.models import Person


def restrict(session: Session, person_id: int, *, now: datetime, actor: str) -> bool:
    """Restrict processing of this person; False if it already was."""
    changed = session.execute(
        update(Person)
        .where(Person.id == person_id, Person.restricted_at.is_(None))
        .values(restricted_at=now)
        .returning(Person.id)
    ).scalar()
    if changed is None:
        return False
    session.execute(
        update(Message)
        .where(
            Message.person_id == person_id,
            Message.purpose.in_(SURVEY_PURPOSES),
            Message.status.in_(PENDING_MESSAGES),
        )
        .values(
            status=MessageStatus.SKIPPED,
            skip_reason="restriction",
            claimed_by=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    _audit(session, person_id, "person.restricted", now=now, actor=actor)
    return True


def lift_restriction(session: Session, person_id: int, *, now: datetime, actor: str) -> bool:
    """Lift it: later interactions are surveyed again (what was cancelled stays cancelled)."""
    changed = session.execute(
        update(Person)
        .where(Person.id == person_id, Person.restricted_at.is_not(None))
        .values(restricted_at=None)
        .returning(Person.id)
    ).scalar()
    if changed is None:
        return False
    _audit(session, person_id, "person.restriction_lifted", now=now, actor=actor)
    return True


def _audit(session: Session, person_id: int, action: str, *, now: datetime, actor: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject_type="person",
        subject_id=person_id,
        at=now,
        fields=["restricted_at"],
    )
