"""Interim stand-in for the intake half of ``invitations/eligibility.py`` (issue 8, built by
the ``rules`` branch): the same names and signatures, deciding only objection (P7), restriction
(P19), case flags, the fatigue window and age. Replaced by the real module when it is merged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

CASE_FLAGS = ("dispute", "hardship", "vulnerable", "legal_hold", "cease_contact", "deceased")


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


@dataclass(frozen=True)
class Rules:
    fatigue: timedelta
    flag_actions: dict[str, str] = field(default_factory=dict)
    max_age: timedelta = timedelta(days=14)
    sampling_rate: float = 1.0
    daily_quota: int | None = None


@dataclass(frozen=True)
class IntakeFacts:
    objected: bool
    restricted: bool
    flags: frozenset[str]
    last_surveyed_at: datetime | None
    occurred_at: datetime
    sample_key: str
    quota_used: int


def at_intake(facts: IntakeFacts, rules: Rules, *, now: datetime) -> Send | Later | Skip:
    reasons: list[str] = []
    if facts.objected:
        reasons.append("objection")
    if facts.restricted:
        reasons.append("restricted")
    reasons += [f"flag_{flag}" for flag in CASE_FLAGS if flag in facts.flags]
    if facts.last_surveyed_at is not None and now - facts.last_surveyed_at < rules.fatigue:
        reasons.append("fatigue")
    if now - facts.occurred_at > rules.max_age:
        reasons.append("too_old")
    return Skip(tuple(reasons)) if reasons else Send()
