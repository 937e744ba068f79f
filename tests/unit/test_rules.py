"""The intake decision: every skip reason, delays by case flag, all reasons recorded with the
objection first (P7, P19 send side, the fatigue window). Pure: no database, ``now`` given."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tilfreds.invitations.eligibility import (
    CASE_FLAGS,
    SKIP_ORDER,
    FlagAction,
    IntakeFacts,
    Later,
    MessageFacts,
    Rules,
    Send,
    Skip,
    at_intake,
    at_send,
    sampled,
)
from tilfreds.invitations.states import InvitationStatus

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
RULES = Rules(
    fatigue=timedelta(days=30),
    flag_actions={flag: FlagAction() for flag in CASE_FLAGS},
    max_age=timedelta(days=14),
    sampling_rate=1.0,
    daily_quota=None,
)
FACTS = IntakeFacts(
    objected=False,
    restricted=False,
    flags=frozenset(),
    last_surveyed_at=None,
    occurred_at=NOW - timedelta(hours=1),
    sample_key="case-1",
    quota_used=0,
)


def test_a_fresh_interaction_is_sent() -> None:
    assert at_intake(FACTS, RULES, now=NOW) == Send()


def test_p7_objection_skips() -> None:
    assert at_intake(replace(FACTS, objected=True), RULES, now=NOW) == Skip(("objection",))


def test_p19_restriction_skips() -> None:
    assert at_intake(replace(FACTS, restricted=True), RULES, now=NOW) == Skip(("restriction",))


def test_p17_a_number_reported_wrong_skips_at_intake_and_at_send() -> None:
    assert at_intake(replace(FACTS, wrong_number=True), RULES, now=NOW) == Skip(("wrong_number",))
    waiting = MessageFacts(
        suppressed=False,
        invitation_status=InvitationStatus.SENT,
        expires_at=NOW + timedelta(days=1),
        wrong_number=True,
    )
    assert at_send(waiting, RULES, now=NOW) == Skip(("wrong_number",))


@pytest.mark.parametrize("flag", CASE_FLAGS)
def test_every_case_flag_skips_by_default(flag: str) -> None:
    decision = at_intake(replace(FACTS, flags=frozenset({flag})), RULES, now=NOW)
    assert decision == Skip((f"flag_{flag}",))


def test_an_unknown_flag_is_skipped_rather_than_ignored() -> None:
    decision = at_intake(replace(FACTS, flags=frozenset({"bankrupt"})), RULES, now=NOW)
    assert decision == Skip(("flag_bankrupt",))


def test_a_delayed_flag_waits_from_the_interaction_then_sends() -> None:
    rules = replace(
        RULES, flag_actions={**RULES.flag_actions, "dispute": FlagAction.parse("delay:14d")}
    )
    facts = replace(FACTS, flags=frozenset({"dispute"}))
    assert at_intake(facts, rules, now=NOW) == Later(
        FACTS.occurred_at + timedelta(days=14), "flag_dispute"
    )
    assert at_intake(facts, rules, now=FACTS.occurred_at + timedelta(days=14)) == Send()


def test_the_longest_delay_wins_and_any_skip_beats_a_delay() -> None:
    actions = {
        **RULES.flag_actions,
        "dispute": FlagAction.parse("delay:2d"),
        "hardship": FlagAction.parse("delay:48h"),
    }
    rules = replace(RULES, flag_actions=actions)
    both = replace(FACTS, flags=frozenset({"dispute", "hardship"}))
    later = at_intake(both, rules, now=NOW)
    assert isinstance(later, Later)
    assert later.until == FACTS.occurred_at + timedelta(days=2)
    assert at_intake(replace(both, flags=both.flags | {"deceased"}), rules, now=NOW) == Skip(
        ("flag_deceased",)
    )


def test_too_old() -> None:
    old = replace(FACTS, occurred_at=NOW - timedelta(days=14, seconds=1))
    assert at_intake(old, RULES, now=NOW) == Skip(("too_old",))
    assert at_intake(replace(old, occurred_at=NOW - timedelta(days=14)), RULES, now=NOW) == Send()


def test_fatigue_window_across_surveys() -> None:
    recent = replace(FACTS, last_surveyed_at=NOW - timedelta(days=29, hours=23))
    assert at_intake(recent, RULES, now=NOW) == Skip(("fatigue",))
    done = replace(FACTS, last_surveyed_at=NOW - timedelta(days=30))
    assert at_intake(done, RULES, now=NOW) == Send()
    assert at_intake(recent, replace(RULES, fatigue=timedelta(0)), now=NOW) == Send()


def test_sampling_is_deterministic_and_near_its_rate() -> None:
    keys = [f"case-{n}" for n in range(10_000)]
    kept = [k for k in keys if sampled(k, 0.25)]
    assert 2300 < len(kept) < 2700
    assert kept == [k for k in keys if sampled(k, 0.25)]
    assert set(kept) <= {k for k in keys if sampled(k, 0.5)}  # a higher rate keeps them all
    out = next(k for k in keys if not sampled(k, 0.25))
    rules = replace(RULES, sampling_rate=0.25)
    assert at_intake(replace(FACTS, sample_key=out), rules, now=NOW) == Skip(("sampled_out",))
    assert not any(sampled(k, 0.0) for k in keys[:100])


def test_daily_quota() -> None:
    rules = replace(RULES, daily_quota=3)
    assert at_intake(replace(FACTS, quota_used=2), rules, now=NOW) == Send()
    assert at_intake(replace(FACTS, quota_used=3), rules, now=NOW) == Skip(("daily_quota",))


def test_p7_all_reasons_recorded_objection_first() -> None:
    everything = IntakeFacts(
        objected=True,
        restricted=True,
        flags=frozenset(CASE_FLAGS),
        last_surveyed_at=NOW,
        occurred_at=NOW - timedelta(days=100),
        sample_key=next(k for k in (f"k{n}" for n in range(100)) if not sampled(k, 0.5)),
        quota_used=10,
        wrong_number=True,
    )
    decision = at_intake(everything, replace(RULES, sampling_rate=0.5, daily_quota=1), now=NOW)
    assert isinstance(decision, Skip)
    assert decision.reason == "objection"
    assert decision.reasons == (
        "objection",
        "restriction",
        "wrong_number",
        *(f"flag_{flag}" for flag in CASE_FLAGS),
        "too_old",
        "fatigue",
        "sampled_out",
        "daily_quota",
    )
    assert decision.reasons == tuple(r for r in SKIP_ORDER if r in decision.reasons)


def test_fatigue_at_send_for_an_invitation_made_in_the_same_window() -> None:
    facts = MessageFacts(
        suppressed=False,
        invitation_status=InvitationStatus.PENDING,
        expires_at=NOW + timedelta(days=7),
        surveyed_since=NOW - timedelta(days=1),
    )
    assert at_send(facts, RULES, now=NOW) == Skip(("fatigue",))
    assert at_send(replace(facts, surveyed_since=None), RULES, now=NOW) == Send()


@pytest.mark.parametrize(
    ("text", "delay"),
    [
        ("skip", None),
        ("delay:14d", timedelta(days=14)),
        ("delay:6h", timedelta(hours=6)),
        ("delay:90m", timedelta(minutes=90)),
    ],
)
def test_flag_actions_parse(text: str, delay: timedelta | None) -> None:
    assert FlagAction.parse(text) == FlagAction(delay)


@pytest.mark.parametrize("text", ["", "delay", "delay:14", "delay:-1d", "ignore", "delay:14w"])
def test_bad_flag_actions_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="flag action"):
        FlagAction.parse(text)
