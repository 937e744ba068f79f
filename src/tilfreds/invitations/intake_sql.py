"""The intake's SQL, set-based and built once per kind of database: one read gathers the facts of
every row of a batch, then each table gets one insert for the whole batch (on PostgreSQL people
take one insert and interaction, invitation and message one statement together; on
SQLite multi-row inserts). A request of one row runs the same statements
(docs/benchmarks-history.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tilfreds.db import UTCDateTime
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.people.models import Interaction, Person, Suppression
from tilfreds.pipelined import run_together
from tilfreds.surveys.models import Survey

people, interactions, suppressions, surveys, invitations, messages = (
    cast(Table, model.__table__)
    for model in (Person, Interaction, Suppression, Survey, Invitation, Message)
)


@dataclass
class Facts:
    """What the one read before writing found, for every row of a batch."""

    existing: dict[str, int] = field(default_factory=dict)  # external_id -> interaction id
    # phone index -> person id, latest invitation, restricted (P19)
    people: dict[str, tuple[int, datetime | None, bool]] = field(default_factory=dict)
    wrong_numbers: set[str] = field(default_factory=set)  # phone indexes reported wrong (P17)
    suppressed: set[str] = field(default_factory=set)  # phone indexes that objected
    surveys: dict[str, int] = field(default_factory=dict)  # slug -> id
    default_survey: int | None = None
    # survey id -> its own daily quota and sampling rate (None: the setting applies)
    overrides: dict[int, tuple[int | None, float | None]] = field(default_factory=dict)
    quota_used: dict[int, int] = field(default_factory=dict)  # survey id -> invitations today


def _among(dialect: str, column: Any, name: str) -> Any:
    """``column`` is one of the list bound as ``name``: one array parameter on PostgreSQL, an
    expanded ``IN`` on SQLite."""
    if dialect == "postgresql":
        split = func.string_to_array(
            bindparam(name, type_=String), SEP, type_=postgresql.ARRAY(String)
        )
        # the array folded into a constant: planned afresh at each execution (about 0.1 ms), as a
        # generic plan made while a table was small would scan it once it is large
        return column == any_(split[2:_MAX_ROWS])
    return column.in_(bindparam(name, expanding=True))


def _listed(dialect: str, values: Sequence[str]) -> Any:
    """The value to bind for ``_among``."""
    if dialect != "postgresql":
        return list(values)
    joined = "".join(SEP + value for value in values)
    if joined.count(SEP) != len(values):
        raise ValueError("a value holds a control character")
    return joined


@cache
def _facts_query(dialect: str) -> Any:
    """One statement, four parts told apart by their first column: earlier deliveries of these
    external ids, the people with these numbers (with their latest invitation), objections
    under these numbers, and the surveys. A person's row says in its quota column whether their
    number was reported wrong (P17)."""
    i, p, s, sv, iv = interactions.c, people.c, suppressions.c, surveys.c, invitations.c
    at, no = literal(None, UTCDateTime()), literal(False, Boolean())
    n, x = sql_cast(null(), Integer()), sql_cast(null(), Float())
    last = select(func.max(iv.created_at)).where(iv.person_id == p.id).scalar_subquery()
    return union_all(
        select(literal("x"), i.external_id, i.id, at, no, n, x).where(
            _among(dialect, i.external_id, "external_ids")
        ),
        select(
            literal("p"),
            p.phone_index,
            p.id,
            last,
            p.restricted_at.is_not(None),
            # the quota column, unused by people, says whether the number was reported wrong
            case((p.wrong_number_at.is_not(None), 1), else_=0),
            x,
        ).where(_among(dialect, p.phone_index, "indexes")),
        select(literal("s"), s.phone_index, s.id, at, no, n, x).where(
            _among(dialect, s.phone_index, "indexes")
        ),
        select(literal("v"), sv.slug, sv.id, at, sv.is_default, sv.daily_quota, sv.sampling_rate),
    )


def read_facts(session: Session, *, external_ids: Sequence[str], indexes: Sequence[str]) -> Facts:
    dialect = session.get_bind().dialect.name
    params = {"external_ids": _listed(dialect, external_ids), "indexes": _listed(dialect, indexes)}
    rows: Any
    if dialect == "postgresql":
        # on the driver, compiled once: SQLAlchemy's execution cost more than the statement
        steps = [(_facts_query(dialect), params)]
        if len(external_ids) >= _NO_JIT_FROM:
            # the planner, seeing thousands of rows and joins it cannot estimate, would JIT-compile
            # the inserts: a second of compiling for statements that are all index and trigger work
            steps.insert(0, (_NO_JIT, {}))
        *_, found = run_together(session, steps)
        # the driver's own rows: the latest invitation's time made UTC as UTCDateTime would
        rows = [(*r[:3], r[3] and r[3].astimezone(UTC), *r[4:]) for r in found]
    else:
        # Core: run on the session's connection, past the ORM's execute path
        rows = session.connection().execute(_facts_query(dialect), params)
    facts = Facts()
    for kind, key, id_, at, flag, quota, rate in rows:
        if kind == "x":
            facts.existing[key] = id_
        elif kind == "p":
            facts.people[key] = (id_, at, bool(flag))
            if quota:
                facts.wrong_numbers.add(key)
        elif kind == "s":
            facts.suppressed.add(key)
        else:
            facts.surveys[key] = id_
            facts.overrides[id_] = (quota, rate)
            if flag:
                facts.default_survey = id_
    return facts


def invitations_since(session: Session, since: datetime) -> dict[int, int]:
    """Invitations per survey made since ``since``: read only where a daily quota applies, as
    counting them is not free on a large table."""
    statement = (
        select(invitations.c.survey_id, func.count())
        .where(invitations.c.created_at >= since)
        .group_by(invitations.c.survey_id)
    )
    return {survey_id: count for survey_id, count in session.execute(statement)}


@cache
def _insert_new(dialect: str, table: Table, conflict_column: str, returning: str) -> Any:
    """``INSERT ... ON CONFLICT (column) DO NOTHING RETURNING id, <returning>`` (both dialects
    speak it): a duplicate from a concurrent transaction is skipped, not an error."""
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return statement.on_conflict_do_nothing(index_elements=[conflict_column]).returning(
        table.c.id, table.c[returning]
    )


def insert_new_id(session: Session, table: Table, conflict: str, row: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return session.execute(_insert_new(dialect, table, conflict, "id"), row).scalar()


# PostgreSQL takes a list as one text parameter, values joined by the ASCII unit separator
# (``intake_pg`` does the same for a batch's columns, NULL written as the record separator);
# both are control characters, which no stored text may hold (tilfreds.fields)
SEP, NULL_MARK = "\x1f", "\x1e"
_MAX_ROWS = 10_000_000  # beyond any batch: the end of an array slice
_NO_JIT_FROM = 100  # rows in a batch
_NO_JIT = text("SET LOCAL jit = off")


def write(
    session: Session, people: list[dict[str, Any]], rows: list[dict[str, Any]], *, now: datetime
) -> tuple[dict[str, int], dict[str, tuple[int, int | None]]]:
    """SQLite (PostgreSQL: ``intake_pg.write``, which says what this does): ``register``, each
    new person's id put in the rows (read if a concurrent transaction registered them), then
    ``record``."""
    registered = register(session, people, now=now) if people else {}
    place_people(session, people, registered, rows)
    return registered, record(session, rows, now=now) if rows else {}


def place_people(
    session: Session,
    people: list[dict[str, Any]],
    registered: dict[str, int],
    rows: list[dict[str, Any]],
) -> None:
    """Give each surveyed row without a person the id of its ``phone_index``'s: one of
    ``people`` registered here, or (its insert skipped) by a concurrent transaction, read."""
    person_of = dict(registered)
    if missing := [p["phone_index"] for p in people if p["phone_index"] not in registered]:
        person_of |= people_ids(session, missing)  # registered concurrently
    for row in rows:
        index = row.pop("phone_index")
        if row["person_id"] is None and row["code"] is not None:
            row["person_id"] = person_of[index]


def register(session: Session, rows: list[dict[str, Any]], *, now: datetime) -> dict[str, int]:
    """SQLite (PostgreSQL: ``intake_pg``): insert these people (phone_index, phone_cipher,
    name_cipher, locale) unless a concurrent transaction did first; the ids of those inserted
    here, by phone index. In phone-index order, so two batches sharing people wait for each other
    rather than deadlock."""
    rows = sorted(rows, key=lambda r: str(r["phone_index"]))
    statement = _insert_new("sqlite", people, "phone_index", "phone_index")
    found = session.execute(statement, _many([{**r, "created_at": now} for r in rows]))
    return {index: id_ for id_, index in found}


def people_ids(session: Session, indexes: Sequence[str]) -> dict[str, int]:
    dialect = session.get_bind().dialect.name
    statement = select(people.c.phone_index, people.c.id).where(
        _among(dialect, people.c.phone_index, "indexes")
    )
    return dict(session.execute(statement, {"indexes": _listed(dialect, indexes)}).all())


# one row of ``record``: an interaction, and for a scheduled one its invitation and message
RECORD_COLUMNS = ("external_id", "person_id", "channel", "reason", "case_ref", "occurred_at",
                  "skip_reasons", "survey_id", "code", "expires_at", "send_after")  # fmt: skip


def record(
    session: Session, rows: list[dict[str, Any]], *, now: datetime
) -> dict[str, tuple[int, int | None]]:
    """SQLite (PostgreSQL: ``intake_pg``): insert each interaction (unless a concurrent delivery
    of its external_id did first) and, for a row with a ``code``, its invitation and the
    invitation's message. Returns ``{external_id: (interaction id, invitation id or None)}`` for
    the rows inserted here."""
    rows = sorted(rows, key=lambda r: str(r["external_id"]))  # one lock order for all batches
    inserted = session.execute(
        _insert_new("sqlite", interactions, "external_id", "external_id"),
        _many([{c: r[c] for c in RECORD_COLUMNS[:8]} | {"created_at": now} for r in rows]),
    )
    ids = {external_id: id_ for id_, external_id in inserted}
    surveyed = [r for r in rows if r["code"] is not None and r["external_id"] in ids]
    out: dict[str, tuple[int, int | None]] = {e: (i, None) for e, i in ids.items()}
    if not surveyed:
        return out
    invited = session.execute(
        insert(invitations).returning(invitations.c.id, invitations.c.interaction_id),
        _many(
            [
                {
                    "interaction_id": ids[r["external_id"]],
                    "person_id": r["person_id"],
                    "survey_id": r["survey_id"],
                    "code": r["code"],
                    "status": InvitationStatus.PENDING,
                    "created_at": now,
                    "expires_at": r["expires_at"],
                }
                for r in surveyed
            ]
        ),
    )
    invitation_of = {interaction_id: id_ for id_, interaction_id in invited}
    session.execute(
        insert(messages),
        _many(
            [
                {
                    "purpose": MessagePurpose.INVITATION,
                    "status": MessageStatus.QUEUED,
                    "person_id": r["person_id"],
                    "invitation_id": invitation_of[ids[r["external_id"]]],
                    "send_after": r["send_after"],
                    "attempts": 0,
                    "created_at": now,
                }
                for r in surveyed
            ]
        ),
    )
    for r in surveyed:
        interaction_id = ids[r["external_id"]]
        out[r["external_id"]] = (interaction_id, invitation_of[interaction_id])
    return out


def _many(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | dict[str, Any]:
    """One row as a plain execute: SQLAlchemy's many-rows path costs more than it saves there."""
    return rows[0] if len(rows) == 1 else rows


def earlier(session: Session, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """What earlier deliveries made: interaction id, external id, skip reasons, and the
    invitation's id, code, status, survey and expiry (None when it was skipped)."""
    i, v = interactions.c, invitations.c
    dialect = session.get_bind().dialect.name
    member = (
        i.id == any_(bindparam("ids", type_=postgresql.ARRAY(Integer)))
        if dialect == "postgresql"
        else i.id.in_(bindparam("ids", expanding=True))
    )
    statement = (
        select(i.id, i.external_id, i.skip_reasons, v.id, v.code, v.status, v.survey_id)
        .select_from(interactions.outerjoin(invitations, v.interaction_id == i.id))
        .add_columns(v.expires_at)
        .where(member)
    )
    return [tuple(row) for row in session.execute(statement, {"ids": list(ids)})]


def by_external_id(session: Session, external_ids: Sequence[str]) -> dict[str, int]:
    dialect = session.get_bind().dialect.name
    statement = select(interactions.c.external_id, interactions.c.id).where(
        _among(dialect, interactions.c.external_id, "external_ids")
    )
    params = {"external_ids": _listed(dialect, external_ids)}
    return dict(session.execute(statement, params).all())


def forget_people(session: Session, ids: Sequence[int]) -> None:
    """Delete people registered for rows a concurrent delivery took: nothing refers to them."""
    session.execute(people.delete().where(people.c.id.in_(list(ids))))
