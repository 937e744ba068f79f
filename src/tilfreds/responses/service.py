"""Submitting answers, or declining to. The short link's token is spent here, on a POST, never
on a GET. Keeps P4 (an answer is tied to its interaction and survey version), P5 (the contact
consent is stored with the notice version shown), P8 (every question may be skipped; declining
ends the invitation and its reminders) and P2 (answers only after identity confirmation)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.errors import Conflict, Forbidden, Gone, InvalidInput
from tilfreds.invitations import service as invitations
from tilfreds.invitations.models import Invitation
from tilfreds.invitations.opened import mark_opened
from tilfreds.invitations.states import InvitationStatus, is_open
from tilfreds.responses.models import Answer, Response
from tilfreds.surveys import service as surveys
from tilfreds.surveys.definition import SurveyDefinition
from tilfreds.surveys.kinds import Consent, Value

CONSENT = Consent.name


class AlreadyAnswered(Conflict):
    code = "already_answered"


class InvitationClosed(Gone):
    code = "invitation_closed"


class IdentityRequired(Forbidden):
    code = "identity_required"


def identity_pending(found: invitations.OpenInvitation) -> bool:
    """Whether answers are refused until the respondent is confirmed (P2, ``identity``). The
    survey's newest version decides, whatever version a form names."""
    return found.survey.identity != "none" and found.invitation.identity_confirmed_at is None


def ensure_open(invitation: Invitation, *, now: datetime) -> None:
    if invitation.status == InvitationStatus.ANSWERED:
        raise AlreadyAnswered("this survey has already been answered")
    if not is_open(invitation.status, invitation.expires_at, now=now):
        raise InvitationClosed("this survey link has expired")


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


def submit(
    session: Session,
    *,
    code: str,
    form: Mapping[str, str],
    now: datetime,
    notice_version: str,
) -> Response:
    """Store the answers with date and time, the version answered and the notice version shown
    (P5), and close the invitation (its reminders with it). The form names the version it was
    rendered from, so a survey changed meanwhile does not change what the answers mean (P4)."""
    found = invitations.find_invitation(session, code, lock=True)
    invitation = found.invitation
    ensure_open(invitation, now=now)
    if identity_pending(found):  # P2: no answers before the respondent is confirmed
        raise IdentityRequired("please confirm who you are first")
    version_field = form.get("version", "")
    published = (
        surveys.version(session, found.survey, int(version_field))
        if version_field.isascii() and version_field.isdigit() and len(version_field) < 10
        else surveys.latest(session, found.survey)
    )
    values = parse_answers(published.definition, form)
    if not values:  # skipping every question is not an answer; declining has its own form
        raise InvalidInput("answer at least one question", field="answers")
    return record(
        session, found, published, values, locale=form.get("lang", ""),
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
) -> Response:
    """Store checked answers to an open invitation, whose row the caller holds locked: the web
    form's and a finished two-way SMS conversation's. Closes the invitation as answered."""
    invitation = found.invitation
    consent = any(
        published.definition.question(key).kind == CONSENT and value.number == 1
        for key, value in values.items()
    )
    answers = [
        Answer(question_key=key, value_int=value.number, value_text=value.text)
        for key, value in values.items()
    ]
    invitations.close_invitation(session, invitation, status=InvitationStatus.ANSWERED, now=now)
    mark_opened(session, invitation.id, now)  # answering means the page was opened
    response = Response(
        invitation_id=invitation.id,
        interaction_id=invitation.interaction_id,
        survey_id=found.survey.id,
        survey_version_id=published.version_id,
        channel=found.channel,
        reason=found.reason,
        locale=locale if locale in SUPPORTED_LOCALES else found.locale,
        submitted_at=now,
        contact_consent=consent,
        notice_version=notice_version,
        answers=answers,
    )
    session.add(response)
    session.flush()
    audit.record(
        session,
        actor="respondent",
        action="response.submitted",
        subject_type="response",
        subject_id=response.id,
        at=now,
        fields=[a.question_key for a in answers],
    )
    return response


def decline(session: Session, *, code: str, now: datetime) -> None:
    """ "I don't want to answer" (P8): the invitation ends as declined and every message still
    waiting for it (its reminders) is skipped. Nothing about the person's answers is stored."""
    found = invitations.find_invitation(session, code, lock=True)
    ensure_open(found.invitation, now=now)
    invitations.close_invitation(
        session, found.invitation, status=InvitationStatus.DECLINED, now=now
    )
    mark_opened(session, found.invitation.id, now)  # declining means the page was opened
    audit.record(
        session,
        actor="respondent",
        action="invitation.declined",
        subject_type="invitation",
        subject_id=found.invitation.id,
        at=now,
        fields=["status"],
    )
