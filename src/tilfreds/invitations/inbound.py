"""Replies from phones. A stop word (STOPP, STOP, AVSLUTT, ...) from any number to any of our
numbers is an objection at any point: it puts the number on the suppression list and ends
everything still open or waiting for it, a two-way conversation too (P7). Any other reply that
``conversation_for`` matches to a two-way survey's conversation is an answer in it
(``conversation.reply``); inside one, "Nei" is an answer, outside one an objection. Each inbound
message counts once, however often the provider delivers it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.crypto import Keys
from tilfreds.db import insert_new
from tilfreds.errors import TilfredsError
from tilfreds.invitations import conversation
from tilfreds.invitations.conversation import ReplyContext
from tilfreds.invitations.models import InboundSeen, Invitation, Message
from tilfreds.invitations.objection import confirm_objection
from tilfreds.invitations.replies import is_objection
from tilfreds.invitations.service import close_for_people
from tilfreds.invitations.states import InvitationStatus, MessageStatus
from tilfreds.people import service as people
from tilfreds.people.models import Person
from tilfreds.people.phones import normalise_phone
from tilfreds.sms import dev
from tilfreds.sms.transport import InboundSms
from tilfreds.surveys.models import Survey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundOutcome:
    # "objection", "unhandled", or in a two-way conversation: "answer", "reask", "answered",
    # "ended", "closed" (conversation.reply)
    kind: str
    closed_invitations: int = 0


def receive_sms(
    session: Session,
    keys: Keys,
    *,
    phone_e164: str,
    text: str,
    now: datetime,
    our_number: str | None = None,
    replies: ReplyContext | None = None,
) -> InboundOutcome:
    """Handle one reply. Without ``our_number`` and ``replies`` only objections are read."""
    if (
        replies is not None
        and our_number is not None
        and not is_objection(text, in_conversation=True)
    ):
        match = conversation_for(
            session, keys, phone_e164=phone_e164, our_number=our_number,
            default_sender=replies.default_sender, window=replies.window, now=now,
        )  # fmt: skip
        if match is not None:
            kind = conversation.reply(
                session, keys, invitation_id=match.invitation_id, phone_e164=phone_e164,
                text=text, ctx=replies, now=now,
            )  # fmt: skip
            if kind is not None:
                return InboundOutcome(kind)
    if not is_objection(text):
        return InboundOutcome("unhandled")
    indexes = keys.blind_indexes(phone_e164)
    added = people.object_to_processing(
        session, phone_indexes=indexes, source="sms", actor="respondent", now=now
    )
    person_ids = people.people_with(session, indexes)
    closed = close_for_people(
        session, person_ids, status=InvitationStatus.OBJECTED, reason="objection", now=now
    )
    conversation.close_for_people(session, person_ids, now=now)
    if added:
        confirm_objection(session, keys, phone_e164=phone_e164, person_ids=person_ids, now=now)
    return InboundOutcome("objection", closed_invitations=closed)


def receive_dev_reply(
    session: Session,
    keys: Keys,
    *,
    phone_e164: str,
    our_number: str,
    text: str,
    now: datetime,
    replies: ReplyContext | None = None,
) -> InboundOutcome:
    """A reply typed on the dev phone: shown in its conversation, then handled like any SMS."""
    dev.record_inbound(session, keys, phone=phone_e164, to=our_number, text=text[:1600], now=now)
    return receive_sms(
        session, keys, phone_e164=phone_e164, text=text, now=now, our_number=our_number,
        replies=replies,
    )  # fmt: skip


def receive_inbound(
    session: Session,
    keys: Keys,
    messages: Sequence[InboundSms],
    *,
    region: str,
    now: datetime,
    replies: ReplyContext | None = None,
) -> list[InboundOutcome]:
    """Inbound messages from a transport; one already handled (same transport and provider id)
    is skipped, and one that cannot be handled (a sender that is no mobile number) is logged
    and skipped alone."""
    outcomes: list[InboundOutcome] = []
    for sms in messages:
        try:
            with session.begin_nested():  # a failure undoes this message only, its "seen" too
                if sms.provider_id and not _first_time(session, sms, now=now):
                    outcomes.append(InboundOutcome("duplicate"))
                    continue
                phone = _e164(sms.sender, region=region)
                outcomes.append(
                    receive_sms(
                        session,
                        keys,
                        phone_e164=phone,
                        text=sms.text,
                        now=now,
                        our_number=sms.to,
                        replies=replies,
                    )
                )
        except TilfredsError as exc:
            log.warning("inbound SMS over %s not handled: %s", sms.transport, exc.message)
            outcomes.append(InboundOutcome("unreadable"))
    return outcomes


def _first_time(session: Session, sms: InboundSms, *, now: datetime) -> bool:
    assert sms.provider_id is not None
    row = session.execute(
        insert_new(session, InboundSeen, "transport", "provider_id")
        .values(transport=sms.transport[:20], provider_id=sms.provider_id[:64], received_at=now)
        .returning(InboundSeen.id)
    ).first()
    return row is not None


def _e164(raw: str, *, region: str) -> str:
    """A sender as providers give it (+47..., 0047..., 47... without a plus) in E.164."""
    raw = raw.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        return normalise_phone(raw, region=region)
    except TilfredsError:
        if raw.isdigit():  # an international number without its plus
            return normalise_phone("+" + raw, region=region)
        raise


def _digits(number: str) -> str:
    number = number.strip()
    return number[2:] if number.startswith("00") else number.lstrip("+")


@dataclass(frozen=True)
class Conversation:
    invitation_id: int
    message_id: int  # our last message in it
    person_id: int


def conversation_for(
    session: Session,
    keys: Keys,
    *,
    phone_e164: str,
    our_number: str,
    default_sender: str,
    window: timedelta,
    now: datetime,
) -> Conversation | None:
    """The conversation a reply from ``phone_e164`` to ``our_number`` belongs to: the one of our
    last message to that number from that number of ours, sent within ``window`` before ``now``
    (a survey's sender, or ``default_sender`` where it has none)."""
    rows = session.execute(
        select(Message.invitation_id, Message.id, Message.person_id, Survey.sender)
        .join(Person, Person.id == Message.person_id)
        .join(Invitation, Invitation.id == Message.invitation_id)
        .join(Survey, Survey.id == Invitation.survey_id)
        .where(
            Person.phone_index.in_(keys.blind_indexes(phone_e164)),
            Message.submitted_at >= now - window,
            Message.submitted_at <= now,
            Message.status.in_((MessageStatus.SUBMITTED, MessageStatus.DELIVERED)),
        )
        .order_by(Message.submitted_at.desc(), Message.id.desc())
    ).all()
    ours = _digits(our_number)
    for invitation_id, message_id, person_id, sender in rows:
        if invitation_id and person_id and _digits(sender or default_sender) == ours:
            return Conversation(invitation_id, message_id, person_id)
    return None
