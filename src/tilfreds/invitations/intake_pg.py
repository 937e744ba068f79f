"""The intake's writes on PostgreSQL: the new people, then interactions, invitations and messages
in one statement, sent together (psycopg's pipeline mode, one wait) with the audit head's locking
read after it when the caller writes nothing more (``batch``; docs/benchmarks-history.md §1)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.invitations.intake_sql import NULL_MARK, RECORD_COLUMNS, SEP, place_people
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.pipelined import run_together

# A batch's rows go as one text parameter per column, values joined by the ASCII unit separator
# (NULL written as the record separator) and split again by ``string_to_array``: far cheaper on
# both sides than array parameters (which the driver builds in Python) or JSON. Both separators
# are control characters, which no stored text may hold (tilfreds.fields).


def _split(name: str, sql_type: str) -> str:
    # each value follows a separator, so one empty value is [''], not an empty array
    return f"CAST((string_to_array(:{name}, E'\\x1f', E'\\x1e'))[2:] AS {sql_type}[])"


def _columns(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in names:
        joined = "".join(SEP + _text(row[name]) for row in rows)
        if joined.count(SEP) != len(rows):
            raise ValueError(f"a value of {name} holds a control character")
        out[name] = joined
    return out


def _text(value: object) -> str:
    if value is None:
        return NULL_MARK
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


_PEOPLE_COLUMNS = ("phone_index", "phone_cipher", "name_cipher", "locale")
# built from constants only; every value is bound
_REGISTER = text(
    "INSERT INTO people (phone_index, phone_cipher, name_cipher, locale, created_at) "  # noqa: S608
    "SELECT t.phone_index, decode(t.phone_cipher, 'hex'), decode(t.name_cipher, 'hex'), "
    f"t.locale, CAST(:now AS timestamptz) FROM unnest({_split('phone_index', 'varchar')}, "
    f"{_split('phone_cipher', 'text')}, {_split('name_cipher', 'text')}, "
    f"{_split('locale', 'varchar')}) AS t({', '.join(_PEOPLE_COLUMNS)}) "
    "ORDER BY t.phone_index ON CONFLICT (phone_index) DO NOTHING RETURNING phone_index, id"
)

_TYPES = ("varchar", "int", "varchar", "varchar", "varchar", "timestamptz",
          "varchar", "int", "varchar", "timestamptz", "timestamptz")  # fmt: skip
_INPUT = ", ".join(_split(c, t) for c, t in zip(RECORD_COLUMNS, _TYPES, strict=True))
# built from constants only; every value is bound. It reads no table but through its inserts: a
# prepared statement's generic plan is made once from the tables as they were, and a join with
# people planned on an empty table scanned it (EXPLAIN) until an analyze replanned it
_RECORD = text(
    f"WITH input AS (SELECT * FROM unnest({_INPUT}) AS t({', '.join(RECORD_COLUMNS)})), "  # noqa: S608
    "interaction AS (INSERT INTO interactions (external_id, person_id, channel, reason, case_ref, "
    "occurred_at, created_at, skip_reasons, survey_id) SELECT external_id, person_id, channel, "
    "reason, case_ref, occurred_at, CAST(:now AS timestamptz), skip_reasons, survey_id FROM input "
    "ORDER BY external_id ON CONFLICT (external_id) DO NOTHING "
    "RETURNING id, external_id, person_id), "
    "invitation AS (INSERT INTO invitations (interaction_id, person_id, survey_id, code, status, "
    "created_at, expires_at) SELECT i.id, i.person_id, t.survey_id, t.code, :pending, "
    "CAST(:now AS timestamptz), t.expires_at FROM interaction i JOIN input t USING (external_id) "
    "WHERE t.code IS NOT NULL RETURNING id, interaction_id, person_id), "
    "message AS (INSERT INTO messages (purpose, status, person_id, invitation_id, send_after, "
    "attempts, created_at) SELECT :purpose, :queued, v.person_id, v.id, t.send_after, 0, "
    "CAST(:now AS timestamptz) FROM invitation v JOIN interaction i ON i.id = v.interaction_id "
    "JOIN input t USING (external_id)) "
    "SELECT i.external_id, i.id, v.id FROM interaction i "
    "LEFT JOIN invitation v ON v.interaction_id = i.id"
)
_CONSTANTS = {
    "pending": InvitationStatus.PENDING.value,
    "purpose": MessagePurpose.INVITATION.value,
    "queued": MessageStatus.QUEUED.value,
}


def write(
    session: Session,
    people: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    *,
    now: datetime,
    lock_head: bool,
) -> tuple[dict[str, int], dict[str, tuple[int, int | None]]]:
    """Insert ``people`` (phone_index, phone_cipher, name_cipher, locale) unless a concurrent
    transaction did first, then each row's interaction (unless a concurrent delivery of its
    external_id did first) and, for a row with a ``code``, its invitation and message; a row
    without ``person_id`` gets the person of its ``phone_index`` (``place_people``). The people
    go first, alone (the rows need their ids); the rows' statement and, with ``lock_head``, the
    audit head's locking read go together. Returns the people inserted here
    (phone index -> id) and ``{external_id: (interaction id, invitation id or None)}`` for the
    rows inserted here. People in phone-index order, rows in external-id order: two batches
    sharing some wait for each other rather than deadlock. The head, read after them, is the
    transaction's last lock (``audit.holding_head``)."""
    registered: dict[str, int] = {}
    if people:  # first, alone: the rows need their people's ids
        people = sorted(people, key=lambda r: str(r["phone_index"]))
        params = {**_columns(people, _PEOPLE_COLUMNS), "now": now}
        [found] = run_together(session, [(_REGISTER, params)])
        registered = dict(found)
    place_people(session, people, registered, rows)
    steps: list[tuple[Any, dict[str, Any]]] = []
    if rows:
        rows = sorted(rows, key=lambda r: str(r["external_id"]))
        steps.append((_RECORD, {**_columns(rows, RECORD_COLUMNS), **_CONSTANTS, "now": now}))
    lock_head = lock_head and bool(rows)  # no row, no entry to append
    if lock_head:
        steps.append((audit.lock_head(), {}))
    if not steps:
        return registered, {}
    answers = run_together(session, steps)
    made = {external_id: (i, v) for external_id, i, v in answers.pop(0)} if rows else {}
    if lock_head and answers[0]:
        [(seq, mac)] = answers[0]
        audit.holding_head(session, seq, mac)
    return registered, made
