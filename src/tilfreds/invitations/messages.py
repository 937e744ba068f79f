"""Queue a message that is not an invitation: an identity code, a rights notice, an objection
confirmation. It goes to a person, or to a number we hold no person for (sealed on the message
and bound to its row); a text that cannot be rendered again at send time is sealed with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from tilfreds.crypto import Keys, context
from tilfreds.invitations.models import Message
from tilfreds.invitations.states import MessagePurpose, MessageStatus


def queue_message(
    session: Session,
    keys: Keys,
    *,
    purpose: MessagePurpose,
    now: datetime,
    person_id: int | None = None,
    to: str | None = None,
    body: str | None = None,
    send_after: datetime | None = None,
    invitation_id: int | None = None,
) -> int:
    """Queue one SMS and return its id. Exactly one of ``person_id`` and ``to`` names the
    recipient; ``invitation_id`` ties it to an invitation (a two-way survey's next question)."""
    if (person_id is None) == (to is None):
        raise ValueError("a message goes to a person or to a number, not both or neither")
    values: dict[str, object] = {
        "purpose": purpose,
        "status": MessageStatus.QUEUED,
        "person_id": person_id,
        "invitation_id": invitation_id,
        "send_after": send_after or now,
        "attempts": 0,
        "created_at": now,
    }
    if to is not None:
        values["to_cipher"] = b"\x00"  # sealed below, once the row has the id it is bound to
    message_id: int = session.execute(
        insert(Message).values(values).returning(Message.id)
    ).scalar_one()
    sealed: dict[str, bytes] = {}
    if to is not None:
        sealed["to_cipher"] = keys.encrypt(to, context=context("messages", "to", message_id))
    if body is not None:
        sealed["body_cipher"] = keys.encrypt(body, context=context("messages", "body", message_id))
    if sealed:
        session.execute(update(Message).where(Message.id == message_id).values(sealed))
    return message_id
