"""Submitting answers. The short link's token is spent here, on the final POST, never on a GET."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.errors import Conflict, Gone, InvalidInput
from tilfreds.invitations import service as invitations
from tilfreds.invitations.models import Invitation
from tilfreds.invitations.states import InvitationStatus, is_open
from tilfreds.responses.models import Answer, Response
from tilfreds.surveys.models import Question


class AlreadyAnswered(Conflict):
    code = "already_answered"


class InvitationClosed(Gone):
    code = "invitation_closed"


def ensure_open(invitation: Invitation, *, now: datetime) -> None:
    if invitation.status == InvitationStatus.ANSWERED:
        raise AlreadyAnswered("this survey has already been answered")
    if not is_open(invitation.status, invitation.expires_at, now=now):
        raise InvitationClosed("this survey link has expired")


def parse_answer(question: Question, raw: str | None) -> tuple[int | None, str | None]:
    """One form value checked against its question kind; InvalidInput names the question."""
    value = (raw or "").strip()
    if not value:
        if question.required:
            raise InvalidInput("please answer every question", field=question.key)
        return None, None
    if question.kind == "csat":
        if value not in {"1", "2", "3", "4", "5"}:
            raise InvalidInput(
                "a satisfaction score is a whole number from 1 to 5", field=question.key
            )
        return int(value), None
    if question.kind == "contact_consent":
        if value not in {"yes", "no"}:
            raise InvalidInput("contact permission is 'yes' or 'no'", field=question.key)
        return (1 if value == "yes" else 0), None
    raise InvalidInput(f"unknown question kind {question.kind!r}", field=question.key)


def submit(session: Session, *, code: str, form: Mapping[str, str], now: datetime) -> Response:
    """Store the answers with date and time and close the invitation (its reminders with it)."""
    found = invitations.find_invitation(session, code, lock=True)
    invitation = found.invitation
    ensure_open(invitation, now=now)
    answers: list[Answer] = []
    consent = False
    for question in found.survey.questions:
        number, text = parse_answer(question, form.get(question.key))
        if number is None and text is None:
            continue
        answers.append(Answer(question_key=question.key, value_int=number, value_text=text))
        if question.kind == "contact_consent":
            consent = number == 1
    if not answers:  # skipping every question is not an answer (declining comes with P8's form)
        raise InvalidInput("answer at least one question", field="answers")
    invitations.close_invitation(session, invitation, status=InvitationStatus.ANSWERED, now=now)
    response = Response(
        invitation_id=invitation.id,
        interaction_id=invitation.interaction_id,
        survey_id=found.survey.id,
        channel=found.channel,
        reason=found.reason,
        locale=found.locale,
        submitted_at=now,
        contact_consent=consent,
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
