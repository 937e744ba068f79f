"""The intake's SQL, built once per kind of database with bound parameters: a request only binds
values into statements whose compiled form SQLAlchemy has cached (see docs/benchmarks.md)."""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.people.models import Interaction, Person, Suppression
from tilfreds.surveys.models import Survey

people, interactions, suppressions, surveys, invitations, messages = (
    cast(Table, model.__table__)
    for model in (Person, Interaction, Suppression, Survey, Invitation, Message)
)


def _facts_query(survey_slug: bool) -> Any:
    """The one read before writing, built once: the hot path binds values into a statement whose
    compiled form SQLAlchemy has cached, instead of building and keying a new one per request."""
    su, i, p, sp = surveys.c, interactions.c, people.c, suppressions.c
    survey = su.slug == bindparam("survey") if survey_slug else su.is_default
    return select(
        select(su.id).where(survey).limit(1).scalar_subquery(),
        select(i.id).where(i.external_id == bindparam("external_id")).scalar_subquery(),
        select(p.id)
        .where(p.phone_index.in_(bindparam("indexes", expanding=True)))
        .limit(1)
        .scalar_subquery(),
        exists().where(sp.phone_index.in_(bindparam("suppressed", expanding=True))),
        exists().where(sp.phone_index == bindparam("current")),  # under the current key?
    )


FACTS = {slug: _facts_query(slug) for slug in (False, True)}


@cache
def _insert_new(dialect: str, table: Table, conflict_column: str) -> Any:
    """``INSERT ... ON CONFLICT (column) DO NOTHING RETURNING id`` (both dialects speak it), built
    once per database kind: a duplicate from a concurrent transaction is skipped, not an error."""
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return statement.on_conflict_do_nothing(index_elements=[conflict_column]).returning(table.c.id)


def insert_new_id(session: Session, table: Table, conflict: str, row: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return session.execute(_insert_new(dialect, table, conflict), row).scalar()


def schedule(session: Session, row: dict[str, Any]) -> tuple[int, int] | None:
    """Insert the interaction (unless a concurrent delivery of its external_id did), its
    invitation and the invitation's message; their ids, or None."""
    if session.get_bind().dialect.name == "postgresql":
        interaction_id, invitation_id = session.execute(_at_once(), row).one()
        return None if interaction_id is None else (interaction_id, invitation_id)
    interaction_id = insert_new_id(
        session,
        interactions,
        "external_id",
        {**{c: row[c] for c in _INTERACTION_COLUMNS}, "created_at": row["now"]},
    )
    if interaction_id is None:
        return None
    invitation_id = session.execute(
        insert(invitations).returning(invitations.c.id),
        {
            "interaction_id": interaction_id,
            "person_id": row["person_id"],
            "survey_id": row["survey_id"],
            "code": row["code"],
            "status": InvitationStatus.PENDING,
            "created_at": row["now"],
            "expires_at": row["expires_at"],
        },
    ).scalar_one()
    session.execute(
        insert(messages),
        {
            "purpose": MessagePurpose.INVITATION,
            "status": MessageStatus.QUEUED,
            "person_id": row["person_id"],
            "invitation_id": invitation_id,
            "send_after": row["send_after"],
            "attempts": 0,
            "created_at": row["now"],
        },
    )
    return interaction_id, invitation_id


_INTERACTION_COLUMNS = (
    "external_id", "person_id", "channel", "reason", "case_ref", "occurred_at", "survey_id"
)  # fmt: skip
_INVITATION_COLUMNS = (
    "interaction_id", "person_id", "survey_id", "code", "status", "created_at", "expires_at"
)  # fmt: skip
_MESSAGE_COLUMNS = (
    "purpose", "status", "person_id", "invitation_id", "send_after", "attempts", "created_at"
)  # fmt: skip


@cache
def _at_once() -> Any:
    """PostgreSQL: the three inserts as one statement (data-modifying CTEs; each insert takes
    the row the one before returned, so a conflicting external_id inserts nothing): two round
    trips fewer on every interaction."""
    it, iv, ms = interactions, invitations, messages

    def bound(name: str, column: Any) -> Any:
        return bindparam(name, type_=column.type)

    interaction = (
        postgresql.insert(it)
        .values({**{c: bindparam(c) for c in _INTERACTION_COLUMNS}, "created_at": bindparam("now")})
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(it.c.id, it.c.person_id)
        .cte("interaction")
    )
    invitation = (
        insert(iv)
        .from_select(
            _INVITATION_COLUMNS,
            select(
                interaction.c.id,
                interaction.c.person_id,
                bound("survey_id", iv.c.survey_id),
                bound("code", iv.c.code),
                literal(InvitationStatus.PENDING, iv.c.status.type),
                bound("now", iv.c.created_at),
                bound("expires_at", iv.c.expires_at),
            ),
        )
        .returning(iv.c.id, iv.c.person_id)
        .cte("invitation")
    )
    message = insert(ms).from_select(
        _MESSAGE_COLUMNS,
        select(
            literal(MessagePurpose.INVITATION, ms.c.purpose.type),
            literal(MessageStatus.QUEUED, ms.c.status.type),
            invitation.c.person_id,
            invitation.c.id,
            bound("send_after", ms.c.send_after),
            literal(0, ms.c.attempts.type),
            bound("now", ms.c.created_at),
        ),
    )
    return select(
        select(interaction.c.id).scalar_subquery(), select(invitation.c.id).scalar_subquery()
    ).add_cte(message.cte("message"))
