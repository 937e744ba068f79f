"""Whether an interaction may be surveyed, and whether a claimed message may go out now: pure
decisions, made at intake and made again at every send (P2, P7, P8, P17 wrong numbers, P19 send
side).

Each answers ``Send``, ``Later(until, reason)`` or ``Skip(reasons)``. When several reasons to skip
hold, all are recorded, the objection first, then the restriction, then the rest in a fixed order
(``SKIP_ORDER``). Nothing here reads the database or the clock: callers pass the facts and ``now``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tilfreds.invitations.states import InvitationStatus, is_open

CASE_FLAGS = ("dispute", "hardship", "vulnerable", "legal_hold", "cease_contact", "deceased")

# every reason a survey may be skipped for, in the order they are recorded (objection first)
SKIP_ORDER = (
    "objection",
    "restriction",
    "wrong_number",
    *(f"flag_{flag}" for flag in CASE_FLAGS),
    "too_old",
    "fatigue",
    "sampled_out",
    "daily_quota",
    "invitation_expired",
    "invitation_answered",
    "invitation_declined",
    "invitation_objected",
)


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Later:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Skip:
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The first (weightiest) reason: what a message's ``skip_reason`` records."""
        return self.reasons[0]


Decision = Send | Later | Skip

_DELAY = re.compile(r"^delay:(\d{1,4})([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True)
class FlagAction:
    """What a case flag does: skip the survey (``delay`` None) or hold it back ``delay`` after
    the interaction."""

    delay: timedelta | None = None

    @classmethod
    def parse(cls, text: str) -> FlagAction:
        """``skip``, or ``delay:<n>d`` / ``delay:<n>h`` / ``delay:<n>m``."""
        if text == "skip":
            return cls()
        match = _DELAY.match(text)
        if match is None:
            raise ValueError(f"a flag action is 'skip' or 'delay:<n>d|h|m', not {text!r}")
        return cls(timedelta(**{_UNITS[match[2]]: int(match[1])}))


@dataclass(frozen=True)
class Rules:
    """The operator's rules, built from settings by ``Runtime.rules``."""

    fatigue: timedelta  # at most one survey per person per this, across all surveys
    flag_actions: Mapping[str, FlagAction]  # a flag not listed is skipped
    max_age: timedelta  # an interaction older than this is not asked about
    sampling_rate: float  # 0..1: the share of interactions surveyed
    daily_quota: int | None  # invitations per survey per day; None: no quota


@dataclass(frozen=True)
class IntakeFacts:
    objected: bool
    restricted: bool
    flags: frozenset[str]
    last_surveyed_at: datetime | None  # latest invitation to this person, any survey
    occurred_at: datetime
    sample_key: str  # e.g. the external_id: sampling is deterministic on it
    quota_used: int  # invitations this survey already made that day
    wrong_number: bool = False  # a respondent said the number is not theirs (P17)


def sampled(key: str, rate: float) -> bool:
    """Whether ``key`` falls inside the sample: the same key always gets the same answer, and a
    higher rate keeps every key a lower one kept."""
    if rate >= 1:
        return True
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def _ordered(reasons: set[str]) -> tuple[str, ...]:
    return tuple(r for r in SKIP_ORDER if r in reasons) + tuple(sorted(reasons - set(SKIP_ORDER)))


def at_intake(facts: IntakeFacts, rules: Rules, *, now: datetime) -> Decision:
    """May this interaction be surveyed? Every reason that holds is collected before deciding."""
    skips: set[str] = set()
    delays: list[Later] = []
    if facts.objected:
        skips.add("objection")
    if facts.restricted:
        skips.add("restriction")
    if facts.wrong_number:
        skips.add("wrong_number")
    for flag in facts.flags:
        action = rules.flag_actions.get(flag, FlagAction())
        if action.delay is None:
            skips.add(f"flag_{flag}")
        elif facts.occurred_at + action.delay > now:
            delays.append(Later(facts.occurred_at + action.delay, f"flag_{flag}"))
    if now - facts.occurred_at > rules.max_age:
        skips.add("too_old")
    if facts.last_surveyed_at is not None and now - facts.last_surveyed_at < rules.fatigue:
        skips.add("fatigue")
    if not sampled(facts.sample_key, rules.sampling_rate):
        skips.add("sampled_out")
    if rules.daily_quota is not None and facts.quota_used >= rules.daily_quota:
        skips.add("daily_quota")
    if skips:
        return Skip(_ordered(skips))
    if delays:
        return max(delays, key=lambda later: (later.until, later.reason))
    return Send()


@dataclass(frozen=True)
class MessageFacts:
    """What the send side knows about one claimed message. ``suppressed`` and ``restricted`` are
    set only for purposes they stop (surveys): a confirmation of the objection still goes."""

    suppressed: bool
    invitation_status: InvitationStatus | None = None  # None: the message has no invitation
    expires_at: datetime | None = None
    restricted: bool = False
    wrong_number: bool = False  # the person's number reached someone else (P17): surveys only
    # another invitation to this person went out within the fatigue window (invitations only)
    surveyed_since: datetime | None = None


def at_send(facts: MessageFacts, rules: Rules | None, *, now: datetime) -> Decision:
    """May this claimed message go out now? The send window is the caller's (it needs the
    number); this is everything else. Without ``rules`` (a caller with no operator rules) there
    is no fatigue check."""
    skips: set[str] = set()
    if facts.suppressed:
        skips.add("objection")  # P7: never again, even if queued before the objection
    if facts.restricted:
        skips.add("restriction")  # P19: restricted processing stops surveys
    if facts.wrong_number:
        skips.add("wrong_number")  # P17: not this person's number
    if facts.invitation_status is not None:
        assert facts.expires_at is not None
        if not is_open(facts.invitation_status, facts.expires_at, now=now):
            if facts.invitation_status in (InvitationStatus.PENDING, InvitationStatus.SENT):
                skips.add("invitation_expired")
            else:
                skips.add(f"invitation_{facts.invitation_status}")
    if (
        rules is not None
        and facts.surveyed_since is not None
        and now - facts.surveyed_since < rules.fatigue
    ):
        skips.add("fatigue")
    return Skip(_ordered(skips)) if skips else Send()


def for_survey(rules: Rules, *, daily_quota: int | None, sampling_rate: float | None) -> Rules:
    """The operator's rules with one survey's own quota and sampling rate, where it sets them."""
    return replace(
        rules,
        daily_quota=rules.daily_quota if daily_quota is None else daily_quota,
        sampling_rate=rules.sampling_rate if sampling_rate is None else sampling_rate,
    )
