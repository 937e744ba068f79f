"""Only the first name reaches an SMS, whatever space separates it from the rest (P10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilfreds.invitations.texts import first_name, invitation_sms

SPACES = " \t\u00a0\u1680\u2000\u2002\u2003\u2007\u2009\u200a\u202f\u205f\u3000"
word = st.text(st.characters(exclude_categories=["Z", "C"]), min_size=1, max_size=20)
gap = st.text(st.sampled_from(SPACES), min_size=1, max_size=3)


@pytest.mark.parametrize("space", list(SPACES))
def test_the_surname_is_cut_off_at_any_unicode_space(space: str) -> None:
    assert first_name(f"Kari{space}Nordmann") == "Kari"
    text = invitation_sms(
        locale="nb", name=f"{space}Kari{space}Nordmann", controller="X", link="https://x.no/s/a"
    )
    assert "Nordmann" not in text and "Kari" in text


@given(words=st.lists(word, min_size=1, max_size=6), gaps=st.lists(gap, min_size=7, max_size=7))
def test_first_name_is_the_first_word_however_the_words_are_spaced(
    words: list[str], gaps: list[str]
) -> None:
    name = gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:], strict=False))
    assert first_name(name) == words[0]


@given(st.text())
def test_first_name_is_one_word_of_the_name_or_nothing(name: str) -> None:
    given_name = first_name(name)
    assert not any(c.isspace() for c in given_name)
    assert name.lstrip().startswith(given_name)
    assert (given_name == "") == (name.strip() == "")
