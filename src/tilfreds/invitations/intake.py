"""Intake: interactions arrive, one or a batch; their people are found or registered; each is
scheduled for an invitation or recorded as skipped with its reasons (P7, P9, P10, P19).

The entry points and their values; the work is set-based whatever the size (``batch``): the
single API call runs the same code with one row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tilfreds.crypto import Keys
from tilfreds.errors import InvalidInput, NotFound
from tilfreds.invitations.batch import receive_interactions
from tilfreds.invitations.intake_types import (
    CODE_LENGTH,
    Intake,
    InteractionIn,
    InvitationRef,
    Refused,
    Timing,
    new_code,
)

__all__ = [
    "CODE_LENGTH",
    "Intake",
    "InteractionIn",
    "InvitationRef",
    "Refused",
    "Timing",
    "new_code",
    "receive_interaction",
    "receive_interactions",
]


def receive_interaction(
    session: Session,
    keys: Keys,
    data: InteractionIn,
    *,
    timing: Timing,
    now: datetime,
    actor: str,
    writes_last: bool = False,
) -> Intake:
    """Record one interaction and schedule its invitation, or record why it is not surveyed.
    The same ``external_id`` again changes nothing and returns what the first call made.
    ``writes_last``: see ``receive_interactions``."""
    [result] = receive_interactions(
        session, keys, [data], timing=timing, now=now, actor=actor, writes_last=writes_last
    )
    if isinstance(result, Refused):
        error = NotFound if result.code == "not_found" else InvalidInput
        raise error(result.message, field=result.field)
    return result
