"""Two-way SMS surveys: one conversation per invitation, answered reply by reply.

The invitation SMS of a survey with ``mode: two_way`` asks its first question (and how to object,
GDPR Art. 21(4)); the first reply to it starts the conversation, pinned to the survey's newest
version. Each reply is read by ``conversation_machine`` and answered with the next question, the
same question again, or the thanks. The answers wait in the conversation row until the last one
and are then stored like the web form's, with date and time, the version, the consent with the
notice version (P4, P5, P9); a conversation that ends otherwise (an objection, idle too long, the
invitation answered on the web or expired) drops them (P8). Replies after it closed get nothing:
an SMS costs, and a "closed" text could loop with an auto-responder.

Lock order: the invitation row, then its conversation row (so two replies from one person arriving
at once over two SMSC connections take turns and never answer one question twice), then
messages; the audit head last (appended at commit). An objection closes invitations and messages
first and the conversations after, which cannot cross a reply: both take the open invitation
first. The idle sweep skips conversations a reply holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, context
from tilfreds.db import Base
from tilfreds.invitations import conversation_machine as machine
from tilfreds.invitations import service as invitations
from tilfreds.invitations.messages import queue_message
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.schedule import country_for
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus, is_open
from tilfreds.invitations.texts import locale_for_country, thanks_sms
from tilfreds.people.models import Person
from tilfreds.responses import service as responses
from tilfreds.surveys import service as surveys
from tilfreds.surveys.models import Survey

OPEN, ANSWERED, ENDED, OBJECTED, CLOSED = "open", "answered", "ended", "objected", "closed"


class SmsConversation(Base):
    __tablename__ = "sms_conversations"
    __table_args__ = (
        # the sweep: WHERE status = 'open' AND last_activity_at < :idle_since
        Index("ix_sms_conversations_status_last_activity_at", "status", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), unique=True
    )
    survey_version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    question_key: Mapped[str | None] = mapped_column(String(40))  # waiting for its reply
    reasks: Mapped[int] = mapped_column(Integer, default=0)
    # the answers so far, until the last one stores them all (P8); emptied when it closes
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12))  # open, answered, ended, objected, closed
    started_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]


@dataclass(frozen=True)
class ReplyContext:
    """What reading replies as answers needs from the settings."""

    default_sender: str  # where a survey names no sender of its own
    window: timedelta  # a reply belongs to our last message within it; also the idle time
    controller: str
    notice_version: str  # stored with the consent (P5)


def reply(
    session: Session,
    keys: Keys,
    *,
    invitation_id: int,
    phone_e164: str,
    text: str,
    ctx: ReplyContext,
    now: datetime,
) -> str | None:
    """Take ``text`` as the answer to the invitation's conversation. None when the invitation is
    no two-way survey with an open conversation (the reply is then read as an objection or left);
    otherwise what happened: answer (the next question queued), reask, answered, ended, closed."""
    found = session.execute(
        select(Invitation, Person)
        .join(Person, Person.id == Invitation.person_id)
        .where(Invitation.id == invitation_id)
        .with_for_update(of=Invitation)
    ).first()
    if found is None:
        return None
    invitation, person = found
    conversation = session.execute(
        select(SmsConversation)
        .where(SmsConversation.invitation_id == invitation_id)
        .with_for_update()
    ).scalar_one_or_none()
    open_invitation = is_open(invitation.status, invitation.expires_at, now=now)
    if conversation is None:
        if not open_invitation:
            return None
        owner = session.get(Survey, invitation.survey_id)
        assert owner is not None  # foreign key
        survey = surveys.latest(session, owner)
        if survey.definition.mode != "two_way":
            return None
        conversation = SmsConversation(
            invitation_id=invitation_id,
            survey_version_id=survey.version_id,
            question_key=machine.start(survey.definition).question,
            reasks=0,
            answers={},
            status=OPEN,
            started_at=now,
            last_activity_at=now,
        )
        session.add(conversation)
        _no_more_reminders(session, invitation, now=now)
    elif conversation.status != OPEN:
        return None
    if not open_invitation or conversation.question_key is None:
        _close(conversation, CLOSED, now=now)  # answered on the web meanwhile, or expired
        return CLOSED
    return _step(
        session, keys, conversation=conversation, invitation=invitation, person=person,
        phone_e164=phone_e164, text=text, ctx=ctx, now=now,
    )  # fmt: skip


def _step(
    session: Session,
    keys: Keys,
    *,
    conversation: SmsConversation,
    invitation: Invitation,
    person: Person,
    phone_e164: str,
    text: str,
    ctx: ReplyContext,
    now: datetime,
) -> str:
    found = invitations.find_invitation(session, invitation.code, lock=True)
    published = surveys.version(session, found.survey, conversation.survey_version_id)
    definition = published.definition
    locale = person.locale or locale_for_country(country_for(phone_e164))
    state = machine.State(
        conversation.question_key, conversation.reasks, machine.load(conversation.answers)
    )
    step = machine.step(definition, state, text, locale=locale)
    conversation.last_activity_at = now
    conversation.question_key, conversation.reasks = step.state.question, step.state.reasks
    conversation.answers = machine.dump(step.state.answers)

    def send(body: str, *, in_conversation: bool = True) -> None:
        queue_message(
            session, keys, purpose=MessagePurpose.SURVEY_QUESTION, now=now, person_id=person.id,
            body=body, invitation_id=invitation.id if in_conversation else None,
        )  # fmt: skip

    if step.outcome in ("next", "reask"):
        assert step.state.question is not None
        asks = machine.reask_sms if step.outcome == "reask" else machine.question_sms
        send(asks(definition, step.state.question, locale=locale, controller=ctx.controller))
        return "answer" if step.outcome == "next" else "reask"
    if step.outcome == "done" and step.state.answers:
        responses.record(
            session, found, published, step.state.answers, locale=locale,
            notice_version=ctx.notice_version, now=now,
        )  # fmt: skip
        _close(conversation, ANSWERED, now=now)
        # after the invitation closed (which cancels its pending messages): not tied to it
        name = keys.decrypt(
            person.name_cipher, context=context("people", "name", person.phone_index)
        )
        send(
            thanks_sms(definition, locale=locale, name=name, controller=ctx.controller),
            in_conversation=False,
        )
        return ANSWERED
    # a required question stayed unreadable, or every question was skipped: nothing is stored
    invitations.close_invitation(session, invitation, status=InvitationStatus.DECLINED, now=now)
    _close(conversation, ENDED, now=now)
    send(machine.ended_sms(locale), in_conversation=False)
    audit.record(
        session, actor="system", action="invitation.conversation_ended",
        subject_type="invitation", subject_id=invitation.id, at=now, fields=["status"],
    )  # fmt: skip
    return ENDED


def _close(conversation: SmsConversation, status: str, *, now: datetime) -> None:
    conversation.status, conversation.answers = status, None
    conversation.question_key, conversation.last_activity_at = None, now


def _no_more_reminders(session: Session, invitation: Invitation, *, now: datetime) -> None:
    """Once the person answers by SMS, the conversation goes on by itself: reminders already
    queued are cancelled, and the sweep queues none (P2)."""
    if invitation.reminders_queued_at is None:
        invitation.reminders_queued_at = now
    session.execute(
        update(Message)
        .where(
            Message.invitation_id == invitation.id,
            Message.purpose == MessagePurpose.REMINDER,
            Message.status.in_(invitations.PENDING_MESSAGES),
        )
        .values(status=MessageStatus.SKIPPED, skip_reason="conversation_started", claimed_by=None)
        .execution_options(synchronize_session=False)
    )


def close_for_people(session: Session, person_ids: Sequence[int], *, now: datetime) -> None:
    """An objection (P7) ends these people's open conversations and drops their answers."""
    if person_ids:
        session.execute(
            update(SmsConversation)
            .where(
                SmsConversation.status == OPEN,
                SmsConversation.invitation_id.in_(
                    select(Invitation.id).where(Invitation.person_id.in_(person_ids))
                ),
            )
            .values(status=OBJECTED, answers=None, question_key=None, last_activity_at=now)
            .execution_options(synchronize_session=False)
        )


def close_idle(session: Session, *, idle: timedelta, now: datetime, limit: int = 1000) -> int:
    """Close conversations with no reply for ``idle`` and drop their unfinished answers (P8):
    a later reply is no longer matched to them (the reply window) and gets nothing. One that a
    reply holds locked right now is not idle: skipped, so the sweep never waits on it."""
    idle_ones = (
        select(SmsConversation.id)
        .where(SmsConversation.status == OPEN, SmsConversation.last_activity_at < now - idle)
        .order_by(SmsConversation.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = session.execute(
        update(SmsConversation)
        .where(SmsConversation.id.in_(idle_ones))
        .values(status=CLOSED, answers=None, question_key=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
