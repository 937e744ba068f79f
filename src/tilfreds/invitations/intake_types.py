"""What intake takes and answers: an interaction as the case system reports it, the timing and
rules it is received under, and what became of it (P10: only channel, reason, time and case
reference are kept about an interaction)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from tilfreds.invitations.eligibility import Rules
from tilfreds.invitations.schedule import SendWindow
from tilfreds.invitations.states import InvitationStatus

_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 11  # 65 bits: unguessable, and short enough for one SMS segment


_CODES = len(_ALPHABET) ** CODE_LENGTH


def new_code() -> str:
    """A uniformly random code: one draw below 62^11, written in base 62."""
    return new_codes(1)[0]


_DRAW = 16  # random bytes a code is drawn from
_BELOW = 2 ** (8 * _DRAW) // _CODES * _CODES  # draws at or above this are redrawn: no bias


def new_codes(n: int) -> list[str]:
    """``n`` uniformly random codes from one read of the system's random source (one read per
    code was a syscall each: 6% of a batch intake's CPU)."""
    raw = secrets.token_bytes(_DRAW * n)
    out = []
    for start in range(0, _DRAW * n, _DRAW):
        draw = int.from_bytes(raw[start : start + _DRAW], "big")
        value = draw % _CODES if draw < _BELOW else secrets.randbelow(_CODES)
        digits = []
        for _ in range(CODE_LENGTH):
            value, digit = divmod(value, len(_ALPHABET))
            digits.append(_ALPHABET[digit])
        out.append("".join(digits))
    return out


@dataclass(frozen=True)
class InteractionIn:
    """An interaction as the case system reports it; phone and locale already normalised."""

    external_id: str
    survey: str | None
    name: str
    phone_e164: str
    locale: str
    channel: str
    reason: str
    occurred_at: datetime
    case_ref: str
    flags: frozenset[str] = frozenset()
    # the number's time zone name and country, when the phone's check already worked them out
    # (``schedule.place_of``); None: worked out from ``phone_e164`` when needed
    place: tuple[str, str] | None = None


@dataclass(frozen=True)
class Timing:
    delay: timedelta  # from intake to the invitation SMS
    valid_for: timedelta  # how long the link can be answered
    max_age: timedelta = timedelta(days=14)  # older interactions are not asked about
    skew: timedelta = timedelta(minutes=5)  # how far ahead a case system's clock may run
    eligibility: Rules | None = None  # the operator's rules; None: only objection and age
    window: SendWindow | None = None  # None: send as soon as the delay is over

    def rules(self) -> Rules:
        if self.eligibility is not None:
            return self.eligibility
        return Rules(timedelta(0), {}, max_age=self.max_age, sampling_rate=1.0, daily_quota=None)


@dataclass(frozen=True)
class InvitationRef:
    id: int
    code: str
    status: InvitationStatus
    survey_id: int
    expires_at: datetime


@dataclass(frozen=True)
class Intake:
    interaction_id: int
    external_id: str
    created: bool
    invitation: InvitationRef | None
    skip_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refused:
    """A row that cannot be taken as it is: the field at fault and why (never its value)."""

    field: str
    message: str
    code: str = "invalid_input"
