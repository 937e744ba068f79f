"""The states an invitation and a message go through, and the one rule for whether an invitation
is still open (P2, P7, P8): every caller asks ``is_open`` rather than comparing statuses itself."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class InvitationStatus(StrEnum):
    PENDING = "pending"  # scheduled, its first message not yet submitted
    SENT = "sent"  # the invitation SMS was submitted to the provider
    ANSWERED = "answered"
    DECLINED = "declined"  # the respondent said they do not want to answer (P8)
    OBJECTED = "objected"  # the number objected (P7): closed with everything else for it
    EXPIRED = "expired"  # its validity period ran out unanswered


OPEN_INVITATION = (InvitationStatus.PENDING, InvitationStatus.SENT)


def is_open(status: InvitationStatus, expires_at: datetime, *, now: datetime) -> bool:
    """Whether the invitation can still be answered or sent: open state and not yet expired."""
    return status in OPEN_INVITATION and now < expires_at


class MessagePurpose(StrEnum):
    INVITATION = "invitation"
    REMINDER = "reminder"
    SURVEY_QUESTION = "survey_question"  # a question of a two-way SMS survey
    IDENTITY_CODE = "identity_code"
    RIGHTS_NOTICE = "rights_notice"
    OBJECTION_CONFIRMATION = "objection_confirmation"


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting for its send_after
    CLAIMED = "claimed"  # leased by a worker, not yet handed to the transport: safe to requeue
    SENDING = "sending"  # handed to the transport; a crash now leaves it in doubt
    SUBMITTED = "submitted"  # the provider took it
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"  # the provider gave up delivering it
    SKIPPED = "skipped"  # not sent, with its reason
    IN_DOUBT = "in_doubt"  # its worker died while it was in flight: it may or may not have gone


def enum_values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]
