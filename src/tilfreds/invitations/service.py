"""Intake: an interaction arrives, its person is found or registered, an invitation is scheduled."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys
from tilfreds.errors import NotFound
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people import service as people
from tilfreds.people.models import Interaction, Person
from tilfreds.surveys import service as surveys
from tilfreds.surveys.models import Survey

_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 11  # 65 bits: unguessable, and short enough for one SMS segment


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class InteractionIn:
    """An interaction as the case system reports it; phone and locale already normalised."""

    external_id: str
    survey: str | None
    name: str
    phone_e164: str
    locale: str
    channel: str
    reason: str
    occurred_at: datetime
    case_ref: str


@dataclass(frozen=True)
class Intake:
    interaction: Interaction
    invitation: Invitation
    created: bool


@dataclass(frozen=True)
class Timing:
    delay: timedelta
    valid_for: timedelta


def receive_interaction(
    session: Session, keys: Keys, data: InteractionIn, *, timing: Timing, now: datetime, actor: str
) -> Intake:
    """Record the interaction and schedule its invitation. The same ``external_id`` again changes
    nothing and returns what the first call made."""
    existing = _intake_for(session, data.external_id)
    if existing is not None:
        return existing
    survey_id = surveys.survey_id(session, data.survey)
    try:
        with session.begin_nested():
            return _create(
                session, keys, data, survey_id=survey_id, timing=timing, now=now, actor=actor
            )
    except IntegrityError:
        # a concurrent request won the race for this external_id (or registered the same person)
        existing = _intake_for(session, data.external_id)
        if existing is not None:
            return existing
        with session.begin_nested():
            return _create(
                session, keys, data, survey_id=survey_id, timing=timing, now=now, actor=actor
            )


def _intake_for(session: Session, external_id: str) -> Intake | None:
    interaction = people.find_interaction(session, external_id)
    if interaction is None:
        return None
    invitation = session.execute(
        select(Invitation).where(Invitation.interaction_id == interaction.id)
    ).scalar_one()
    return Intake(interaction=interaction, invitation=invitation, created=False)


def _create(
    session: Session,
    keys: Keys,
    data: InteractionIn,
    *,
    survey_id: int,
    timing: Timing,
    now: datetime,
    actor: str,
) -> Intake:
    person = people.person_for(
        session, keys, phone_e164=data.phone_e164, name=data.name, locale=data.locale, now=now
    )
    interaction = Interaction(
        external_id=data.external_id,
        person_id=person.id,
        channel=data.channel,
        reason=data.reason,
        case_ref=data.case_ref,
        occurred_at=data.occurred_at,
        created_at=now,
    )
    session.add(interaction)
    session.flush()
    invitation = Invitation(
        interaction_id=interaction.id,
        person_id=person.id,
        survey_id=survey_id,
        code=new_code(),
        status="pending",
        created_at=now,
        expires_at=now + timing.valid_for,
    )
    session.add(invitation)
    session.flush()
    session.add(
        Message(
            invitation_id=invitation.id,
            kind="invitation",
            status="queued",
            send_after=now + timing.delay,
            attempts=0,
            created_at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        action="interaction.received",
        subject_type="interaction",
        subject_id=interaction.id,
        at=now,
        fields=["channel", "reason", "case_ref", "occurred_at"],
    )
    return Intake(interaction=interaction, invitation=invitation, created=True)


@dataclass(frozen=True)
class OpenInvitation:
    invitation: Invitation
    survey: Survey
    locale: str


def find_invitation(session: Session, code: str, *, lock: bool = False) -> OpenInvitation:
    """The invitation behind a short link, whatever its state; reading spends nothing. ``lock``
    holds its row until commit, so two submissions of one link cannot both pass the checks."""
    if not (code.isascii() and code.isalnum() and len(code) <= 16):
        raise NotFound("this link is not valid")  # never a code we made; don't ask the database
    query = (
        select(Invitation, Person.locale)
        .join(Person, Person.id == Invitation.person_id)
        .where(Invitation.code == code)
    )
    row = session.execute(query.with_for_update(of=Invitation) if lock else query).first()
    if row is None:
        raise NotFound("this link is not valid")
    invitation, locale = row
    survey = session.get(Survey, invitation.survey_id)
    assert survey is not None  # foreign key
    return OpenInvitation(invitation=invitation, survey=survey, locale=locale)


def close_invitation(
    session: Session, invitation: Invitation, *, status: str, now: datetime
) -> int:
    """End an invitation (answered, declined, objected) and cancel its queued messages."""
    invitation.status = status
    invitation.closed_at = now
    result = session.execute(
        update(Message)
        .where(Message.invitation_id == invitation.id, Message.status == "queued")
        .values(status="skipped", skip_reason=f"invitation_{status}")
    )
    return int(getattr(result, "rowcount", 0) or 0)
