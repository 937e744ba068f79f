"""Turn claimed messages into SMS: one joined read, eligibility decided again at send time (P7,
P19 send side, the fatigue window), numbers opened and texts rendered, and survey messages held
back to the send window in the recipient's local time (P2). Each claimed message ends in exactly
one of: sendable, skipped (all its reasons, objection first), postponed (``later``: its new
``send_after``), failed. A row that cannot be opened or rendered fails alone, with its own reason;
the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, case, func, select
from sqlalchemy.orm import Session

from tilfreds.crypto import Keys, UndecryptableError, context
from tilfreds.db import ids_in
from tilfreds.invitations.eligibility import MessageFacts, Rules, Skip, at_send
from tilfreds.invitations.models import QUEUED, Invitation, Message
from tilfreds.invitations.schedule import (
    SendWindow,
    country_for,
    next_opening,
    place_for,
    zone_named,
)
from tilfreds.invitations.states import InvitationStatus, MessagePurpose
from tilfreds.invitations.texts import locale_for_country, objection_confirmation_sms, survey_sms
from tilfreds.people import service as people
from tilfreds.people.models import Person, Suppression
from tilfreds.sms.transport import OutboundSms
from tilfreds.surveys.definition import SurveyDefinition
from tilfreds.surveys.frozen import newest_definitions
from tilfreds.surveys.models import Survey

# purposes an objection stops (P7); a confirmation of the objection itself, a code or a notice
# the person asked for still reach them
SURVEY_PURPOSES = frozenset(
    {MessagePurpose.INVITATION, MessagePurpose.REMINDER, MessagePurpose.SURVEY_QUESTION}
)
# purposes that wait for the send window; a confirmation the person just asked for does not
WINDOWED = frozenset({MessagePurpose.INVITATION, MessagePurpose.REMINDER})
_messages, _invitations, _people, _suppressions, _surveys = (
    cast(Table, model.__table__) for model in (Message, Invitation, Person, Suppression, Survey)
)


@dataclass(frozen=True)
class SendContext:
    public_url: str
    controller: str
    sender: str  # where a message's survey names no sender of its own
    rules: Rules | None = None  # None: no fatigue check at send (a caller without settings)
    window: SendWindow | None = None  # None: no send window


@dataclass(frozen=True)
class _Row:
    """What rendering one message needs, its sealed values opened."""

    id: int
    purpose: MessagePurpose
    code: str | None
    locale: str
    name: str
    # the newest version of its survey, for invitations and reminders (its own SMS texts)
    survey: SurveyDefinition | None = None


Renderer = Callable[[_Row, SendContext], str]


def _link(row: _Row, ctx: SendContext) -> str:
    return f"{ctx.public_url.rstrip('/')}/s/{row.code}"


def _invitation(row: _Row, ctx: SendContext) -> str:
    return survey_sms(
        row.survey, "invitation", locale=row.locale, name=row.name, controller=ctx.controller,
        link=_link(row, ctx),
    )  # fmt: skip


def _reminder(row: _Row, ctx: SendContext) -> str:
    return survey_sms(
        row.survey, "reminder", locale=row.locale, name=row.name, controller=ctx.controller,
        link=_link(row, ctx),
    )  # fmt: skip


def _objection_confirmation(row: _Row, ctx: SendContext) -> str:
    return objection_confirmation_sms(locale=row.locale, controller=ctx.controller)


# texts rendered at send time from current data, so a rectified name is used (P17); purposes
# without a renderer carry their text sealed in the message (body_cipher)
RENDERERS: dict[MessagePurpose, Renderer] = {
    MessagePurpose.INVITATION: _invitation,
    MessagePurpose.REMINDER: _reminder,
    MessagePurpose.OBJECTION_CONFIRMATION: _objection_confirmation,
}


@dataclass
class Prepared:
    ids: list[int] = field(default_factory=list)  # every message read, in id order
    sendable: list[OutboundSms] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # comma-joined reasons
    failed: dict[int, str] = field(default_factory=dict)
    later: dict[int, datetime] = field(default_factory=dict)  # its window opens then


def _joined() -> Any:
    """A message with what deciding and rendering it needs: Core on the tables, so the rows are
    plain tuples, with none of the ORM's per-row work."""
    m, i, p, s = _messages.c, _invitations.c, _people.c, _suppressions.c
    other = _invitations.alias("other")
    # the latest other invitation sent to this person (the fatigue window, checked for invitations)
    surveyed_since = case(
        (
            m.purpose == MessagePurpose.INVITATION,
            select(func.max(other.c.sent_at))
            .where(other.c.person_id == m.person_id, other.c.id != m.invitation_id)
            .scalar_subquery(),
        ),
    )
    return select(
        m.id,
        m.purpose,
        m.person_id,
        m.to_cipher,
        m.body_cipher,
        i.status.label("invitation_status"),
        i.expires_at,
        i.code,
        p.phone_index,
        p.phone_cipher,
        p.name_cipher,
        p.locale,
        p.restricted_at,
        p.wrong_number_at,
        surveyed_since.label("surveyed_since"),
        s.id.label("suppression_id"),
        _surveys.c.sender,
        i.survey_id,
    ).select_from(
        _messages.outerjoin(_invitations, i.id == m.invitation_id)
        .outerjoin(_surveys, _surveys.c.id == i.survey_id)
        .outerjoin(_people, p.id == m.person_id)
        .outerjoin(_suppressions, s.phone_index == p.phone_index)
    )


class _Taken(NamedTuple):
    """A row of ``_joined``, its columns in order, as a plain named tuple: a SQLAlchemy Row looks
    a field up by name at about the cost of the rest of a message's deciding (some 25 look-ups
    a message), a tuple at a twentieth of it."""

    id: int
    purpose: MessagePurpose
    person_id: int | None
    to_cipher: bytes | None
    body_cipher: bytes | None
    invitation_status: InvitationStatus | None
    expires_at: datetime | None
    code: str | None
    phone_index: str | None
    phone_cipher: bytes | None
    name_cipher: bytes | None
    locale: str | None
    restricted_at: datetime | None
    wrong_number_at: datetime | None
    surveyed_since: datetime | None
    suppression_id: int | None
    sender: str | None
    survey_id: int | None


def _read(session: Session, statement: Any, params: dict[str, Any]) -> list[_Taken]:
    return [_Taken._make(row) for row in session.execute(statement, params).all()]


@cache
def _prepare_query(postgres: bool) -> Any:
    return _joined().where(ids_in(postgres, _messages.c.id)).order_by(_messages.c.id)


@cache
def _take_query() -> Any:
    m = _messages.c
    return (
        _joined()
        .where(m.status == QUEUED, m.send_after <= bindparam("now"))
        .order_by(m.send_after, m.id)  # the due index's order: the oldest due first
        .limit(bindparam("limit"))
        .with_for_update(of=_messages, skip_locked=True)
    )


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def prepare(
    session: Session, keys: Keys, ids: Sequence[int], *, ctx: SendContext, now: datetime
) -> Prepared:
    """The SMS for each claimed message that may still go out, in claim order."""
    rows = _read(session, _prepare_query(_postgres(session)), {"ids": list(ids)})
    return _decide(session, keys, rows, ctx=ctx, now=now)


def take(session: Session, keys: Keys, *, limit: int, ctx: SendContext, now: datetime) -> Prepared:
    """Lock up to ``limit`` due messages, oldest due first, skipping those another worker has
    locked (PostgreSQL; SQLite's writers are serialised), and prepare them in the same read. They
    stay queued until ``jobs.lease`` leases them in this transaction: each row is written once."""
    rows = _read(session, _take_query(), {"now": now, "limit": limit})
    rows.sort(key=itemgetter(0))  # by id
    return _decide(session, keys, rows, ctx=ctx, now=now)


def _decide(
    session: Session, keys: Keys, rows: Sequence[_Taken], *, ctx: SendContext, now: datetime
) -> Prepared:
    out = Prepared(ids=[r.id for r in rows])
    # the render hook: each survey's texts, loaded once for the batch
    surveys = newest_definitions(
        session, {r.survey_id for r in rows if r.survey_id is not None and r.purpose in WINDOWED}
    )
    purposes: dict[int, MessagePurpose] = {}
    invited: set[int | None] = set()  # people an invitation of this batch goes to
    for r in rows:
        survey = r.purpose in SURVEY_PURPOSES
        facts = MessageFacts(
            suppressed=r.suppression_id is not None and survey,
            invitation_status=r.invitation_status,
            expires_at=r.expires_at,
            restricted=r.restricted_at is not None and survey,
            wrong_number=r.wrong_number_at is not None and survey,
            # two invitations to one person in one batch: the second waits for no sent_at
            surveyed_since=(
                now
                if r.purpose == MessagePurpose.INVITATION and r.person_id in invited
                else r.surveyed_since
            ),
        )
        decision = at_send(facts, ctx.rules, now=now)
        if isinstance(decision, Skip):
            out.skipped[r.id] = ",".join(decision.reasons)
            continue
        try:
            definition = surveys.get(r.survey_id) if r.survey_id is not None else None
            sms = _render(keys, r, ctx, definition)
        except UndecryptableError as exc:
            out.failed[r.id] = f"cannot open its stored data: {exc}"
            continue
        except Exception as exc:  # a broken text must not stop the batch
            out.failed[r.id] = f"cannot render its text: {type(exc).__name__}: {exc}"
            continue
        opening = _opening(r, sms.to, ctx, now=now)
        if opening > now:
            out.later[r.id] = opening
            continue
        out.sendable.append(sms)
        purposes[r.id] = r.purpose
        if r.purpose == MessagePurpose.INVITATION:
            invited.add(r.person_id)
    if keys.previous:
        _skip_objectors_under_any_key(session, keys, out, purposes)
    return out


def _skip_objectors_under_any_key(
    session: Session, keys: Keys, out: Prepared, purposes: dict[int, MessagePurpose]
) -> None:
    """While a key rotation is under way, a person and their objection can sit under different
    keys, which the join cannot see: check by number under every configured key (P7)."""
    survey = [sms for sms in out.sendable if purposes[int(sms.reference)] in SURVEY_PURPOSES]
    objected = people.suppressed_numbers(session, keys, {sms.to for sms in survey})
    for sms in survey:
        if sms.to in objected:
            out.skipped[int(sms.reference)] = "objection"
    out.sendable = [sms for sms in out.sendable if int(sms.reference) not in out.skipped]


def _opening(r: _Taken, to: str, ctx: SendContext, *, now: datetime) -> datetime:
    """When a survey message may reach its recipient: now, or the send window's next opening
    in their local time, spread by the message's id."""
    if ctx.window is None or not ctx.window.enabled or r.purpose not in WINDOWED:
        return now
    zone, country = place_for(to)  # one parse of the number gives both
    return next_opening(
        now, zone=zone_named(zone), country=country, window=ctx.window, spread_key=str(r.id)
    )


def _render(
    keys: Keys, r: _Taken, ctx: SendContext, survey: SurveyDefinition | None
) -> OutboundSms:
    if r.phone_cipher is not None:  # a person's: their (outer-joined) columns are all set
        index, name_cipher = r.phone_index or "", r.name_cipher or b""
        to = keys.decrypt(r.phone_cipher, context=context("people", "phone", index))
        name = keys.decrypt(name_cipher, context=context("people", "name", index))
    elif r.to_cipher is not None:
        to, name = keys.decrypt(r.to_cipher, context=context("messages", "to", r.id)), ""
    else:
        raise UndecryptableError("it has no recipient")
    locale = r.locale or locale_for_country(country_for(to))
    row = _Row(id=r.id, purpose=r.purpose, code=r.code, locale=locale, name=name, survey=survey)
    if r.body_cipher is not None:
        body = keys.decrypt(r.body_cipher, context=context("messages", "body", r.id))
    elif r.purpose in RENDERERS:
        body = RENDERERS[r.purpose](row, ctx)
    else:
        raise ValueError(f"no text for a {r.purpose} message")
    return OutboundSms(to=to, body=body, sender=r.sender or ctx.sender, reference=str(r.id))
