"""Invitation codes: 11 characters of base 62, uniformly random, drawn for a whole batch from one
read of the system's random source."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest

from tilfreds.invitations import intake_types
from tilfreds.invitations.intake_types import CODE_LENGTH, new_code, new_codes

ALPHABET = set(intake_types._ALPHABET)


def test_codes_are_base62_of_the_right_length_and_never_repeat() -> None:
    codes = [*new_codes(5000), new_code()]
    assert all(len(c) == CODE_LENGTH and set(c) <= ALPHABET for c in codes)
    assert len(set(codes)) == len(codes)


def test_every_character_is_about_equally_likely_in_every_place() -> None:
    codes = new_codes(6200)
    for place in (0, CODE_LENGTH // 2, CODE_LENGTH - 1):
        counts = Counter(c[place] for c in codes)
        assert set(counts) == ALPHABET
        assert max(counts.values()) < 180 and min(counts.values()) > 40  # mean 100


def test_a_draw_in_the_biased_top_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "token_bytes", lambda n: b"\xff" * n)  # always >= the bound
    redrawn: list[int] = []

    def randbelow(n: int) -> int:
        redrawn.append(n)
        return 61  # the last character, then zeros ("a")

    monkeypatch.setattr(secrets, "randbelow", randbelow)
    assert new_codes(2) == ["9" + "a" * (CODE_LENGTH - 1)] * 2
    assert redrawn == [62**CODE_LENGTH] * 2
