"""Invitations after intake: find one behind its short link, and close invitations (answered,
declined, objected, expired) together with everything still waiting to be sent for them.

Lock order (convention 13): invitations before messages, the audit head last (it is appended at
commit). Every path that closes invitations and cancels messages follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, literal_column, select, true, update
from sqlalchemy.orm import Session

from tilfreds.errors import NotFound
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import (
    OPEN_INVITATION,
    InvitationStatus,
    MessagePurpose,
    MessageStatus,
)
from tilfreds.people.models import Interaction, Person
from tilfreds.surveys.frozen import DEFINITION_TEXT, FrozenVersion, frozen
from tilfreds.surveys.models import Survey, SurveyVersion

# messages that have not yet been handed to the transport, and so can still be stopped
PENDING_MESSAGES = (MessageStatus.QUEUED, MessageStatus.CLAIMED)


@dataclass(frozen=True)
class OpenInvitation:
    invitation: Invitation
    survey: Survey
    locale: str
    channel: str
    reason: str


def find_invitation(session: Session, code: str, *, lock: bool = False) -> OpenInvitation:
    """The invitation behind a short link, whatever its state; reading spends nothing. ``lock``
    holds its row until commit, so two submissions of one link cannot both pass the checks."""
    if not (code.isascii() and code.isalnum() and len(code) <= 16):
        raise NotFound("this link is not valid")  # never a code we made; don't ask the database
    query = (
        select(Invitation, Person.locale, Interaction.channel, Interaction.reason)
        .join(Person, Person.id == Invitation.person_id)
        .join(Interaction, Interaction.id == Invitation.interaction_id)
        .where(Invitation.code == code)
    )
    row = session.execute(query.with_for_update(of=Invitation) if lock else query).first()
    if row is None:
        raise NotFound("this link is not valid")
    invitation, locale, channel, reason = row
    survey = session.get(Survey, invitation.survey_id)
    assert survey is not None  # foreign key
    return OpenInvitation(
        invitation=invitation, survey=survey, locale=locale, channel=channel, reason=reason
    )


@dataclass(frozen=True)
class Link:
    """What the respondent's pages need of the invitation behind a short link, read in one
    statement: its state, the person's language, what it rates and the survey's newest version."""

    id: int
    code: str
    status: InvitationStatus
    expires_at: datetime
    survey_id: int
    interaction_id: int
    locale: str
    channel: str
    reason: str
    latest: FrozenVersion | None  # the survey's newest version; None: none is published
    identity_confirmed_at: datetime | None = None  # the identity step passed (P2)
    wrong_number_at: datetime | None = None  # "that is not me" (P17)


# built once: each respondent request runs them, and building (and keying) them cost as much as
# the rest of the request's Python
_NEWEST = (
    select(SurveyVersion.id)
    .where(SurveyVersion.survey_id == Invitation.survey_id)
    .order_by(SurveyVersion.number.desc())
    .limit(1)
    .correlate(Invitation)
    .scalar_subquery()
)
_LINK = (
    select(
        Invitation.id,
        Invitation.code,
        Invitation.status,
        Invitation.expires_at,
        Invitation.survey_id,
        Invitation.interaction_id,
        Person.locale,
        Interaction.channel,
        Interaction.reason,
        SurveyVersion.id,
        DEFINITION_TEXT,
        Invitation.identity_confirmed_at,
        Invitation.wrong_number_at,
    )
    .join(Person, Person.id == Invitation.person_id)
    .join(Interaction, Interaction.id == Invitation.interaction_id)
    .outerjoin(SurveyVersion, SurveyVersion.id == _NEWEST)
    .where(Invitation.code == bindparam("code"))
)
_LINK_LOCKED = _LINK.with_for_update(of=Invitation)
# PostgreSQL: the same, and this transaction's COMMIT will not wait for the disk (SET LOCAL
# synchronous_commit = off, in this statement rather than a round trip of its own)
_LINK_LOCKED_NO_WAIT = _LINK_LOCKED.add_columns(
    func.set_config(literal_column("'synchronous_commit'"), literal_column("'off'"), true())
)
_CLOSE = (
    update(Invitation)
    .where(Invitation.id == bindparam("the_invitation"))
    .values(
        status=bindparam("new_status"),
        closed_at=bindparam("closed_now"),
        # only an answer or a decline closes a link this way: the person opened it (the funnel)
        opened_at=func.coalesce(Invitation.opened_at, bindparam("closed_now")),
    )
)
_CANCEL = (
    update(Message)
    .where(
        Message.invitation_id == bindparam("the_invitation"),
        Message.status.in_(PENDING_MESSAGES),
    )
    .values(status=MessageStatus.SKIPPED, skip_reason=bindparam("why"), claimed_by=None,
            lease_until=None)
)  # fmt: skip


def find_link(
    session: Session, code: str, *, lock: bool = False, wait_for_disk: bool = True
) -> Link:
    """``find_invitation`` in one round trip and without loading ORM objects: the invitation,
    its person's language, its interaction and the survey's newest version (parsed once per
    process). ``lock`` holds the invitation's row until commit, so two submissions of one link
    cannot both pass; with ``wait_for_disk=False`` as well, on PostgreSQL, the transaction's
    COMMIT returns before the disk has it (an answer's: ``responses.service.submit`` says why)."""
    if not (code.isascii() and code.isalnum() and len(code) <= 16):
        raise NotFound("this link is not valid")  # never a code we made; don't ask the database
    conn = session.connection()
    statement: Any = _LINK_LOCKED if lock else _LINK
    if lock and not wait_for_disk and conn.dialect.name == "postgresql":
        statement = _LINK_LOCKED_NO_WAIT
    row = conn.execute(statement, {"code": code}).first()
    if row is None:
        raise NotFound("this link is not valid")
    (id_, code_, status, expires_at, survey_id, interaction_id, locale, channel, reason,
     version_id, definition, confirmed_at, wrong_at) = row[:13]  # fmt: skip
    return Link(
        id_, code_, status, expires_at, survey_id, interaction_id, locale, channel, reason,
        latest=None if version_id is None else frozen(survey_id, version_id, definition),
        identity_confirmed_at=confirmed_at, wrong_number_at=wrong_at,
    )  # fmt: skip


# on PostgreSQL both in one statement (the invitation's row first, then its messages: the lock
# order); returns one row per message cancelled
_CLOSED = _CLOSE.returning(Invitation.id).cte("closed")
_CLOSE_AND_CANCEL = (
    update(Message)
    .where(
        Message.invitation_id.in_(select(_CLOSED.c.id).scalar_subquery()),
        Message.status.in_(PENDING_MESSAGES),
    )
    .values(status=MessageStatus.SKIPPED, skip_reason=bindparam("why"), claimed_by=None,
            lease_until=None)
    .returning(Message.id)
)  # fmt: skip


def close_link(
    session: Session, invitation_id: int, *, status: InvitationStatus, now: datetime
) -> int:
    """``close_invitation`` for an invitation whose row the caller holds locked (the respondent
    answered or declined): its row updated, marked opened if it was not yet (``opened.py``), then
    its messages not yet handed over cancelled; one round trip on PostgreSQL, two elsewhere."""
    conn = session.connection()
    params = {"the_invitation": invitation_id, "new_status": status, "closed_now": now}
    why = {"why": f"invitation_{status}"}
    if conn.dialect.name == "postgresql":
        return len(conn.execute(_CLOSE_AND_CANCEL, params | why).all())
    conn.execute(_CLOSE, params)
    result = conn.execute(_CANCEL, {"the_invitation": invitation_id} | why)
    return int(result.rowcount or 0)


def close_invitation(
    session: Session, invitation: Invitation, *, status: InvitationStatus, now: datetime
) -> int:
    """End one invitation (answered, declined) and cancel its messages not yet handed over."""
    invitation.status = status
    invitation.closed_at = now
    session.flush()
    return _cancel_messages(
        session, Message.invitation_id == invitation.id, reason=f"invitation_{status}"
    )


def close_for_people(
    session: Session,
    person_ids: Sequence[int],
    *,
    status: InvitationStatus,
    reason: str,
    now: datetime,
) -> int:
    """Close every open invitation of these people and cancel every message not yet handed over
    to the transport, whatever its purpose but the confirmation of an objection (an objection
    stops everything else, P7). Returns how many invitations were closed."""
    if not person_ids:
        return 0
    closed = session.execute(
        update(Invitation)
        .where(Invitation.person_id.in_(person_ids), Invitation.status.in_(OPEN_INVITATION))
        .values(status=status, closed_at=now)
        .returning(Invitation.id)
    ).all()
    _cancel_messages(
        session,
        Message.person_id.in_(person_ids)
        # an objection's own confirmation is not cancelled by the next STOPP (P7)
        & (Message.purpose != MessagePurpose.OBJECTION_CONFIRMATION),
        reason=reason,
    )
    return len(closed)


def expire_overdue(session: Session, *, now: datetime, limit: int = 1000) -> int:
    """Move open invitations past their validity to ``expired`` and cancel their messages, in a
    batch; idempotent and safe to run from several workers at once."""
    overdue = (
        select(Invitation.id)
        .where(Invitation.status.in_(OPEN_INVITATION), Invitation.expires_at <= now)
        .order_by(Invitation.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(
        session.execute(
            update(Invitation)
            .where(Invitation.id.in_(overdue.scalar_subquery()))
            .values(status=InvitationStatus.EXPIRED, closed_at=now)
            .returning(Invitation.id)
        ).scalars()
    )
    if ids:
        _cancel_messages(session, Message.invitation_id.in_(ids), reason="invitation_expired")
    return len(ids)


def _cancel_messages(session: Session, which: object, *, reason: str) -> int:
    result = session.execute(
        update(Message)
        .where(which, Message.status.in_(PENDING_MESSAGES))  # type: ignore[arg-type]
        .values(status=MessageStatus.SKIPPED, skip_reason=reason, claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
