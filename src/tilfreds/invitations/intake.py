"""Intake: an interaction arrives, its person is found or registered, an invitation is scheduled.

The hot path of the API, so it is a handful of set-based statements: one read that answers every
question at once (survey, earlier delivery of this external_id, person, objection), then plain
inserts, built once in ``intake_sql`` (on PostgreSQL the interaction, its invitation and its
message are one statement). Keeps P7 (an objector is never registered again), P9/P10 (only
what the notice lists).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, context
from tilfreds.errors import InvalidInput, NotFound
from tilfreds.invitations import intake_sql as sql
from tilfreds.invitations.models import Invitation
from tilfreds.invitations.states import InvitationStatus
from tilfreds.people.models import Interaction, Person

_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 11  # 65 bits: unguessable, and short enough for one SMS segment
_INTERACTION_FIELDS = ["channel", "reason", "case_ref", "occurred_at"]


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
class Timing:
    delay: timedelta  # from intake to the invitation SMS
    valid_for: timedelta  # how long the link can be answered
    max_age: timedelta = timedelta(days=14)  # older interactions are not asked about
    skew: timedelta = timedelta(minutes=5)  # how far ahead a case system's clock may run


@dataclass(frozen=True)
class InvitationRef:
    id: int
    code: str
    status: InvitationStatus
    survey_id: int
    expires_at: datetime


@dataclass(frozen=True)
class Intake:
    interaction_id: int
    external_id: str
    created: bool
    invitation: InvitationRef | None
    skip_reasons: tuple[str, ...] = ()


class _Facts:
    """What the one read before writing found."""

    def __init__(self, row: tuple[int | None, int | None, int | None, bool, bool]) -> None:
        self.survey_id, self.existing_id, self.person_id, self.objected, self.current = row


def receive_interaction(
    session: Session, keys: Keys, data: InteractionIn, *, timing: Timing, now: datetime, actor: str
) -> Intake:
    """Record the interaction and schedule its invitation, or record why it is not surveyed.
    The same ``external_id`` again changes nothing and returns what the first call made."""
    if data.occurred_at > now + timing.skew:
        raise InvalidInput("occurred_at is in the future", field="occurred_at")
    indexes = keys.blind_indexes(data.phone_e164)
    facts = _read_facts(session, data, indexes)
    if facts.existing_id is not None:
        return _existing(session, facts.existing_id)
    if facts.survey_id is None:
        raise NotFound(
            "no survey with that slug" if data.survey else "no default survey is set up",
            field="survey",
        )
    reasons = (("objection",) if facts.objected else ()) + (
        ("too_old",) if now - data.occurred_at > timing.max_age else ()
    )
    if facts.objected and not facts.current:
        _carry_objection(session, indexes[0], now=now)
    if reasons:
        return _skip(session, data, reasons, now=now, actor=actor)
    person_id, registered = facts.person_id, False
    if person_id is None:
        person_id, registered = _register(session, keys, data, indexes[0], now=now)
    invitation = InvitationRef(
        id=0,
        code=new_code(),
        status=InvitationStatus.PENDING,
        survey_id=facts.survey_id,
        expires_at=now + timing.valid_for,
    )
    row = {
        "external_id": data.external_id,
        "person_id": person_id,
        "channel": data.channel,
        "reason": data.reason,
        "case_ref": data.case_ref,
        "occurred_at": data.occurred_at,
        "now": now,
        "survey_id": invitation.survey_id,
        "code": invitation.code,
        "expires_at": invitation.expires_at,
        "send_after": now + timing.delay,
    }
    scheduled = sql.schedule(session, row)
    if scheduled is None:  # a concurrent delivery of the same external_id won
        if registered:
            session.execute(delete(Person).where(Person.id == person_id))
        return _existing_by_external_id(session, data.external_id)
    interaction_id, invitation_id = scheduled
    if registered:
        audit.record(
            session,
            actor="system",
            action="person.registered",
            subject_type="person",
            subject_id=person_id,
            at=now,
            fields=["name", "phone", "locale"],
        )
    audit.record(
        session,
        actor=actor,
        action="interaction.received",
        subject_type="interaction",
        subject_id=interaction_id,
        at=now,
        fields=_INTERACTION_FIELDS,
    )
    return Intake(
        interaction_id=interaction_id,
        external_id=data.external_id,
        created=True,
        invitation=InvitationRef(
            id=invitation_id,
            code=invitation.code,
            status=invitation.status,
            survey_id=invitation.survey_id,
            expires_at=invitation.expires_at,
        ),
    )


def _read_facts(session: Session, data: InteractionIn, indexes: list[str]) -> _Facts:
    row = session.execute(
        sql.FACTS[bool(data.survey)],
        {
            "survey": data.survey,
            "external_id": data.external_id,
            "indexes": indexes,
            "suppressed": indexes,
            "current": indexes[0],
        },
    ).one()
    return _Facts((row[0], row[1], row[2], bool(row[3]), bool(row[4])))


def _carry_objection(session: Session, index: str, *, now: datetime) -> None:
    """The number objected under a previous key only (its objection outlived every record of the
    number, so a rotation could not move it): with the number in hand, record it under the current
    key too, so it keeps matching once the old key is dropped (P7)."""
    sql.insert_new_id(
        session,
        sql.suppressions,
        "phone_index",
        {"phone_index": index, "source": "rekeyed", "created_at": now},
    )


def _register(
    session: Session, keys: Keys, data: InteractionIn, index: str, *, now: datetime
) -> tuple[int, bool]:
    """The id of the person with this number, inserted now if no one else did first."""
    person_id = sql.insert_new_id(
        session,
        sql.people,
        "phone_index",
        {
            "phone_index": index,
            "phone_cipher": keys.encrypt(
                data.phone_e164, context=context("people", "phone", index)
            ),
            "name_cipher": keys.encrypt(
                data.name.strip(), context=context("people", "name", index)
            ),
            "locale": data.locale,
            "created_at": now,
        },
    )
    if person_id is not None:
        return person_id, True
    return session.execute(select(Person.id).where(Person.phone_index == index)).scalar_one(), False


def _skip(
    session: Session, data: InteractionIn, reasons: tuple[str, ...], *, now: datetime, actor: str
) -> Intake:
    """Record an interaction that is not surveyed: no person, no reason text, no case ref."""
    interaction_id = sql.insert_new_id(
        session,
        sql.interactions,
        "external_id",
        {
            "external_id": data.external_id,
            "person_id": None,
            "channel": data.channel,
            "reason": "",
            "case_ref": "",
            "occurred_at": data.occurred_at,
            "created_at": now,
            "skip_reasons": ",".join(reasons),
        },
    )
    if interaction_id is None:
        return _existing_by_external_id(session, data.external_id)
    audit.record(
        session,
        actor=actor,
        action="interaction.skipped",
        subject_type="interaction",
        subject_id=interaction_id,
        at=now,
        fields=["channel", "occurred_at"],
    )
    return Intake(
        interaction_id=interaction_id,
        external_id=data.external_id,
        created=True,
        invitation=None,
        skip_reasons=reasons,
    )


def _existing_by_external_id(session: Session, external_id: str) -> Intake:
    found = session.execute(
        select(Interaction.id).where(Interaction.external_id == external_id)
    ).scalar_one()
    return _existing(session, found)


def _existing(session: Session, interaction_id: int) -> Intake:
    row = session.execute(
        select(
            Interaction.external_id,
            Interaction.skip_reasons,
            Invitation.id,
            Invitation.code,
            Invitation.status,
            Invitation.survey_id,
            Invitation.expires_at,
        )
        .outerjoin(Invitation, Invitation.interaction_id == Interaction.id)
        .where(Interaction.id == interaction_id)
    ).one()
    external_id, skip_reasons, inv_id, code, status, survey_id, expires_at = row
    invitation = (
        InvitationRef(
            id=inv_id, code=code, status=status, survey_id=survey_id, expires_at=expires_at
        )
        if inv_id is not None
        else None
    )
    return Intake(
        interaction_id=interaction_id,
        external_id=external_id,
        created=False,
        invitation=invitation,
        skip_reasons=tuple(skip_reasons.split(",")) if skip_reasons else (),
    )
