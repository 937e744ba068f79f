"""Submitting answers, or declining to. The short link's token is spent here, on a POST, never
on a GET. Keeps P4 (an answer is tied to its interaction and survey version), P5 (the contact
consent is stored with the notice version shown) and P8 (every question may be skipped; declining
ends the invitation and its reminders) and P2 (answers only after identity confirmation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ARRAY, Integer, String, Text, bindparam, func, insert, select, true
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from tilfreds.invitations import service as invitations
from tilfreds.invitations.states import InvitationStatus, is_open
from tilfreds.responses.models import Answer, Response
from tilfreds.surveys import service as surveys
from tilfreds.surveys.definition import SurveyDefinition
from tilfreds.surveys.frozen import FrozenVersion, frozen_version
from tilfreds.surveys.kinds import Consent, Value

CONSENT = Consent.name


class AlreadyAnswered(Conflict):
    code = "already_answered"


class InvitationClosed(Gone):
    code = "invitation_closed"


class IdentityRequired(Forbidden):
    code = "identity_required"


def identity_pending(kind: str, confirmed_at: datetime | None) -> bool:
    """Whether answers are refused until the respondent is confirmed (P2, ``identity``): the
    kind the survey's newest version asks for, whatever version a form names."""
    return kind != "none" and confirmed_at is None


def link_identity_pending(link: invitations.Link) -> bool:
    kind = link.latest.definition.identity if link.latest is not None else "none"
    return identity_pending(kind, link.identity_confirmed_at)


class _Openable(Protocol):
    @property
    def status(self) -> InvitationStatus: ...
    @property
    def expires_at(self) -> datetime: ...


def ensure_open(invitation: _Openable, *, now: datetime) -> None:
    if invitation.status == InvitationStatus.ANSWERED:
        raise AlreadyAnswered("this survey has already been answered")
    if not is_open(invitation.status, invitation.expires_at, now=now):
        raise InvitationClosed("this survey link has expired")


def answered_version(session: Session, link: invitations.Link, version_field: str) -> FrozenVersion:
    """The version the form was rendered from (it names it), else the survey's newest (read with
    the invitation); parsed once per process, as published versions never change."""
    named = version_field.isascii() and version_field.isdigit() and len(version_field) < 10
    latest = link.latest
    if not named or (latest is not None and int(version_field) == latest.version_id):
        if latest is None:
            raise NotFound("this survey has no published version", field="survey")
        return latest
    found = frozen_version(session, int(version_field))
    if found is None or found.survey_id != link.survey_id:
        raise InvalidInput("this form belongs to another survey", field="version")
    return found


def parse_answers(definition: SurveyDefinition, form: Mapping[str, str]) -> dict[str, Value]:
    """The form's answers, each checked by its question's kind. A question whose ``show_if`` does
    not hold is not asked, so an answer to it is dropped; an empty answer is a skipped question
    unless it is required (P8). InvalidInput names the question."""
    answers: dict[str, Value] = {}
    for question in definition.questions:
        condition = question.show_if
        if condition is not None:
            earlier = answers.get(condition.question, Value())
            if not condition.holds(earlier.number, earlier.text):
                continue
        raw = (form.get(question.key) or "").strip()
        if not raw:
            if question.required:
                raise InvalidInput("please answer every question", field=question.key)
            continue
        try:
            answers[question.key] = question.handler.parse_form(raw, question.choice_keys)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=question.key) from None
    return answers


@dataclass(frozen=True)
class Submitted:
    id: int  # the response's
    locale: str  # the language it was answered in


_INSERT_RESPONSE = insert(Response).returning(Response.id)
_INSERT_ANSWERS = insert(Answer)
_RESPONSE_COLUMNS = (
    "invitation_id", "interaction_id", "survey_id", "survey_version_id", "channel", "reason",
    "locale", "submitted_at", "contact_consent", "notice_version",
)  # fmt: skip


def _response_and_answers() -> Any:
    """On PostgreSQL: the response and its answers in one statement (the answers as three
    arrays, unnested), returning the response's id once per answer."""
    stored = (
        insert(Response)
        .values({c: bindparam(f"r_{c}") for c in _RESPONSE_COLUMNS})
        .returning(Response.id)
        .cte("stored")
    )
    rows = (
        func.unnest(
            bindparam("keys", type_=ARRAY(String)),
            bindparam("ints", type_=ARRAY(Integer)),
            bindparam("texts", type_=ARRAY(Text)),
        )
        .table_valued("key", "number", "text")
        .render_derived(name="given")
    )
    chosen = select(stored.c.id, rows.c.key, rows.c.number, rows.c.text).select_from(
        stored.join(rows, true())
    )
    return (
        insert(Answer)
        .from_select(["response_id", "question_key", "value_int", "value_text"], chosen)
        .returning(Answer.response_id)
    )


_RESPONSE_AND_ANSWERS = _response_and_answers()


def _store(session: Session, response: dict[str, object], values: Mapping[str, Value]) -> int:
    """The response row, then all its answers; the response's id. One round trip on
    PostgreSQL, two elsewhere (the answers in one statement)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = {f"r_{c}": response[c] for c in _RESPONSE_COLUMNS} | {
            "keys": list(values),
            "ints": [v.number for v in values.values()],
            "texts": [v.text for v in values.values()],
        }
        return int(conn.execute(_RESPONSE_AND_ANSWERS, params).scalars().first() or 0)
    response_id = int(conn.execute(_INSERT_RESPONSE, response).scalar_one())
    conn.execute(
        _INSERT_ANSWERS,
        [
            {"response_id": response_id, "question_key": key, "value_int": v.number,
             "value_text": v.text}
            for key, v in values.items()
        ],
    )  # fmt: skip
    return response_id


def submit(
    session: Session,
    *,
    code: str,
    form: Mapping[str, str],
    now: datetime,
    notice_version: str,
) -> Submitted:
    """Store the answers with date and time, the version answered and the notice version shown
    (P5), and close the invitation (its reminders with it). The form names the version it was
    rendered from, so a survey changed meanwhile does not change what the answers mean (P4)."""
    # On PostgreSQL this transaction's COMMIT returns before its WAL reaches the disk. Every
    # answer appends to the audit chain, whose head is locked until COMMIT returns: waiting for
    # the disk there (about 5 ms here) would let the whole system take at most ~200 answers a
    # second. A crash of the machine can lose the answers of the last few hundred milliseconds,
    # each whole, with its audit entry (never the chain's consistency); the invitation is then
    # still open and can be answered again.
    link = invitations.find_link(session, code, lock=True, wait_for_disk=False)
    ensure_open(link, now=now)
    if link_identity_pending(link):  # P2: no answers before the respondent is confirmed
        raise IdentityRequired("please confirm who you are first")
    published = answered_version(session, link, form.get("version", ""))
    values = parse_answers(published.definition, form)
    if not values:  # skipping every question is not an answer; declining has its own form
        raise InvalidInput("answer at least one question", field="answers")
    return _record(
        session, _Answering(link.id, link.interaction_id, link.survey_id, published.version_id,
                            link.channel, link.reason, link.locale),
        published.definition, values, locale=form.get("lang", ""),
        notice_version=notice_version, now=now,
    )  # fmt: skip


def record(
    session: Session,
    found: invitations.OpenInvitation,
    published: surveys.Published,
    values: Mapping[str, Value],
    *,
    locale: str,
    notice_version: str,
    now: datetime,
) -> Submitted:
    """Store checked answers to an open invitation, whose row the caller holds locked: a
    finished two-way SMS conversation's (the web form's goes through ``submit``). Closes the
    invitation as answered."""
    invitation = found.invitation
    stored = _record(
        session, _Answering(invitation.id, invitation.interaction_id, found.survey.id,
                            published.version_id, found.channel, found.reason, found.locale),
        published.definition, values, locale=locale, notice_version=notice_version, now=now,
    )  # fmt: skip
    session.expire(invitation)  # closed by a statement: read its new state when asked
    return stored


@dataclass(frozen=True)
class _Answering:
    """What an answer is stored against: the invitation (locked by the caller) and its survey."""

    invitation_id: int
    interaction_id: int
    survey_id: int
    version_id: int
    channel: str
    reason: str
    person_locale: str


def _record(
    session: Session,
    to: _Answering,
    definition: SurveyDefinition,
    values: Mapping[str, Value],
    *,
    locale: str,
    notice_version: str,
    now: datetime,
) -> Submitted:
    consent = any(
        definition.question(key).kind == CONSENT and value.number == 1
        for key, value in values.items()
    )
    locale = locale if locale in SUPPORTED_LOCALES else to.person_locale
    # closing also marks it opened: answering means the person opened it (the funnel)
    invitations.close_link(session, to.invitation_id, status=InvitationStatus.ANSWERED, now=now)
    response = {
        "invitation_id": to.invitation_id,
        "interaction_id": to.interaction_id,
        "survey_id": to.survey_id,
        "survey_version_id": to.version_id,
        "channel": to.channel,
        "reason": to.reason,
        "locale": locale,
        "submitted_at": now,
        "contact_consent": consent,
        "notice_version": notice_version,
    }
    stored = Submitted(id=_store(session, response, values), locale=locale)
    audit.record(
        session,
        actor="respondent",
        action="response.submitted",
        subject_type="response",
        subject_id=stored.id,
        at=now,
        fields=list(values),
    )
    return stored


def decline(session: Session, *, code: str, now: datetime) -> None:
    """ "I don't want to answer" (P8): the invitation ends as declined and every message still
    waiting for it (its reminders) is skipped. Nothing about the person's answers is stored."""
    link = invitations.find_link(session, code, lock=True)
    ensure_open(link, now=now)
    # closing also marks it opened: declining means the page was opened (the funnel)
    invitations.close_link(session, link.id, status=InvitationStatus.DECLINED, now=now)
    audit.record(
        session,
        actor="respondent",
        action="invitation.declined",
        subject_type="invitation",
        subject_id=link.id,
        at=now,
        fields=["status"],
    )
