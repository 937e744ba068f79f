"""Objection words (P7): matched after Unicode normalisation and around politeness, in six
languages, and never inside a sentence that a person has to read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilfreds.invitations.replies import POLITE_PHRASES, STOP_PHRASES, is_objection

STOP_WORDS = {
    "nb": ["STOPP", "STOP", "AVSLUTT", "AVMELD", "Meld meg av", "RESERVER", "Nei"],
    "nn": ["STOPP", "AVSLUTT", "AVMELD", "meld av", "RESERVER", "nei"],
    "sv": ["STOPP", "STOPPA", "AVSLUTA", "AVREGISTRERA", "Avanmäl mig", "NEJ"],
    "da": ["STOP", "AFMELD", "Frameld mig", "NEJ"],
    "fi": ["LOPETA", "POIS", "Peruuta", "EI"],
    "en": ["STOP", "UNSUBSCRIBE", "END", "QUIT", "Opt-out", "NO"],
}


@pytest.mark.parametrize(
    "reply", [word for words in STOP_WORDS.values() for word in words], ids=str
)
def test_p7_stop_words_of_six_languages_are_objections(reply: str) -> None:
    assert is_objection(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "ＳＴＯＰＰ",  # fullwidth, as some keyboards type it
        "Ｓｔｏｐｐ ｔａｋｋ",
        "S\u00adTOPP",  # a soft hyphen, invisible on the phone
        "STO\u200bPP",  # a zero-width space
        "Stopp takk",
        "STOP please",
        "Stopp, takk!",
        "nei takk",
        "Nej tack.",
        "nej tak",
        "Ei kiitos",
        "No thank you!!",
        "Hei! Stopp 🙏",
        "  stopp\n",
        "Avanma\u0308l",  # "ä" typed as a + combining diaeresis
        "STOPP STOPP STOPP",
        "Lopeta, kiitos.",
        "Vær så snill, avslutt",
    ],
)
def test_p7_stop_words_match_after_normalisation_and_around_politeness(reply: str) -> None:
    assert is_objection(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "Jeg vil ikke stoppe betalingen",
        "Stopp å ringe meg",
        "Nei, det stemmer ikke",
        "Ikke stopp",
        "Takk for hjelpen",
        "takk",
        "please",
        "5",
        "STOPP 5",
        "stopptakk",
        "STOPPE",
        "",
        "🙏",
        "Can you stop the payment please",
    ],
)
def test_p7_a_stop_word_inside_a_sentence_is_not_an_objection(reply: str) -> None:
    assert not is_objection(reply)


def _one_word(phrases: frozenset[tuple[str, ...]]) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(" ".join(p) for p in phrases))


def _cased(word: str) -> st.SearchStrategy[str]:
    """The word in any mix of upper and lower case, ASCII letters perhaps fullwidth."""
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).flatmap(
        lambda flags: st.booleans().map(
            lambda wide: "".join(
                _widen(c.upper() if up else c, wide) for c, up in zip(word, flags, strict=True)
            )
        )
    )


def _widen(char: str, wide: bool) -> str:
    return chr(ord(char) + 0xFEE0) if wide and "!" <= char <= "~" else char


SEPARATOR = st.text(
    alphabet=" \t\n,.!?;:-…¡¿()\"'🙏😊👍❤️\u200b\u00ad", min_size=1, max_size=4
).filter(
    lambda s: s.strip("\u200b\u00ad") != ""  # invisible characters alone do not separate words
)
PADDING = st.lists(_one_word(POLITE_PHRASES).flatmap(_cased), max_size=3)
EDGE = st.text(alphabet=" \n,.!?🙏😊", max_size=3)
KNOWN = {word for phrase in STOP_PHRASES | POLITE_PHRASES for word in phrase}
OTHER_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzæøåäö", min_size=1, max_size=12).filter(
    lambda w: w not in KNOWN
)


def _join(parts: list[str], separators: st.DataObject) -> str:
    return "".join(
        part + (separators.draw(SEPARATOR) if i < len(parts) - 1 else "")
        for i, part in enumerate(parts)
    )


@given(
    stop=_one_word(STOP_PHRASES).flatmap(_cased),
    before=PADDING,
    after=PADDING,
    lead=EDGE,
    tail=EDGE,
    data=st.data(),
)
def test_p7_any_politeness_and_punctuation_around_a_stop_word_is_an_objection(
    stop: str, before: list[str], after: list[str], lead: str, tail: str, data: st.DataObject
) -> None:
    assert is_objection(lead + _join([*before, stop, *after], data) + tail)


@given(
    known=st.lists(
        st.one_of(_one_word(STOP_PHRASES), _one_word(POLITE_PHRASES)).flatmap(_cased), max_size=4
    ),
    others=st.lists(OTHER_WORD, min_size=1, max_size=3),
    data=st.data(),
)
def test_p7_a_reply_with_any_other_word_is_not_an_objection(
    known: list[str], others: list[str], data: st.DataObject
) -> None:
    words = data.draw(st.permutations([*known, *others]))
    assert not is_objection(_join(list(words), data))
