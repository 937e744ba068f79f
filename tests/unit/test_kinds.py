"""The question kinds' registry, per kind: what the form offers, parsing and checking a form value
and an SMS reply (six languages), and the report's figures (P4, P8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.errors import InvalidInput
from tilfreds.i18n import translator
from tilfreds.surveys.kinds import KINDS, Scale, Value, parse_reply
from tilfreds.surveys.reply_words import NUMBER_WORDS, YES_NO_WORDS

TEMPLATES = Path(__file__).parents[2] / "src" / "tilfreds" / "web" / "templates" / "questions"
SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
CHOICES = ["phone", "letter", "web"]


def test_every_kind_has_a_widget_template_and_wording_in_every_language() -> None:
    assert set(KINDS) == {"csat", "nps", "ces", "single_choice", "free_text", "contact_consent"}
    for kind in KINDS.values():
        assert (TEMPLATES / f"{kind.widget}.html").exists(), kind.name
        for locale in SUPPORTED_LOCALES:
            text = translator(locale)(kind.default_text, controller="X AS")
            assert text and "%(" not in text


@pytest.mark.parametrize("name", sorted(SCALES))
def test_a_scale_offers_and_accepts_exactly_its_range(name: str) -> None:
    low, high = SCALES[name]
    kind = KINDS[name]
    options = kind.options([], translator("nb"))
    assert [o.value for o in options] == [str(n) for n in range(low, high + 1)]
    assert options[0].hint and options[-1].hint  # the ends are named for screen readers
    for n in range(low, high + 1):
        assert kind.parse_form(str(n), []) == Value(number=n)
    for bad in (str(low - 1), str(high + 1), "3.5", "٣", "x", " 1"):
        with pytest.raises(InvalidInput):
            kind.parse_form(bad, [])


def test_single_choice_free_text_and_consent_parse_their_form_values() -> None:
    assert KINDS["single_choice"].parse_form("letter", CHOICES) == Value(2, "letter")
    with pytest.raises(InvalidInput):
        KINDS["single_choice"].parse_form("fax", CHOICES)
    assert KINDS["free_text"].parse_form("Raskt svar", []) == Value(text="Raskt svar")
    with pytest.raises(InvalidInput):
        KINDS["free_text"].parse_form("x" * 2001, [])
    assert KINDS["contact_consent"].parse_form("yes", []) == Value(number=1)
    assert KINDS["contact_consent"].parse_form("no", []) == Value(number=0)
    with pytest.raises(InvalidInput):
        KINDS["contact_consent"].parse_form("maybe", [])


@given(
    name=st.sampled_from(sorted(SCALES)),
    locale=st.sampled_from(SUPPORTED_LOCALES),
    data=st.data(),
    comment=st.sampled_from(["", "takk for hjelpen", "bra!", "kiitos paljon"]),
)
def test_a_scale_reply_is_read_from_digits_and_number_words_in_six_languages(
    name: str, locale: str, data: st.DataObject, comment: str
) -> None:
    low, high = SCALES[name]
    words = {w: n for w, n in NUMBER_WORDS[locale].items() if low <= n <= high}
    word = data.draw(st.sampled_from(sorted(words)))
    n = data.draw(st.integers(low, high))
    for reply, expected in ((f"{n} {comment}", n), (f"{word.upper()}, {comment}", words[word])):
        value = parse_reply(name, reply, locale)
        assert value.number == expected
        assert value.text == (comment or None)  # extra text is kept as a comment


@pytest.mark.parametrize(
    ("reply", "locale", "expected"),
    [
        ("fem", "nb", 5),
        ("Fire takk", "nn", 4),
        ("två", "sv", 2),
        ("otte", "da", 8),
        ("kymmenen", "fi", 10),
        ("Nine", "en", 9),
        ("fyra", "nb", 4),  # a Swede with a Norwegian number: the other languages are tried
        ("  3!", "en", 3),
    ],
)
def test_number_words_in_each_language(reply: str, locale: str, expected: int) -> None:
    assert parse_reply("nps", reply, locale).number == expected


@pytest.mark.parametrize("reply", ["", "hei", "11", "-1", "−2", "12 av 10", "🙂"])
def test_an_unreadable_scale_reply_asks_again(reply: str) -> None:
    with pytest.raises(InvalidInput):
        parse_reply("nps", reply, "nb")


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_consent_replies_yes_and_no_in_every_language(locale: str) -> None:
    for word, meaning in YES_NO_WORDS[locale].items():
        assert parse_reply("contact_consent", word.upper(), locale).number == int(meaning)
    for reply in ("JA", "Nei", "YES please", "no thanks"):
        value = parse_reply("contact_consent", reply, locale)
        assert value.number == int(reply.split()[0].casefold() in {"ja", "yes"})
    assert parse_reply("contact_consent", "NO, call later", "en").text == "call later"
    with pytest.raises(InvalidInput):
        parse_reply("contact_consent", "kanskje", locale)


def test_choice_and_free_text_replies() -> None:
    assert parse_reply("single_choice", "2", "nb", CHOICES) == Value(2, "letter")
    assert parse_reply("single_choice", "tre", "nb", CHOICES) == Value(3, "web")
    with pytest.raises(InvalidInput):
        parse_reply("single_choice", "4", "nb", CHOICES)
    assert parse_reply("free_text", "  Alt gikk fint  ", "nb").text == "Alt gikk fint"


def _figures(name: str, counts: dict[object, int], choices: list[str] | None = None) -> dict:
    size = sum(counts.values())
    figures = KINDS[name].figures(choices or [])
    return {key: f.compute(counts, size) for key, f in figures.items()}


def test_csat_nps_and_ces_figures() -> None:
    csat = _figures("csat", {5: 3, 4: 1, 2: 1})
    assert csat["score"] == 0.8 and csat["mean"] == 4.2
    assert csat["distribution"] == {1: 0, 2: 1, 3: 0, 4: 1, 5: 3}
    nps = _figures("nps", {10: 5, 9: 1, 8: 2, 3: 2})  # 6 promoters, 2 detractors of 10
    assert nps["score"] == 40.0
    assert _figures("nps", {0: 4})["score"] == -100.0
    ces = _figures("ces", {7: 2, 1: 2})
    assert ces["score"] == ces["mean"] == 4.0
    assert _figures("single_choice", {"web": 5}, CHOICES)["distribution"] == {
        "phone": 0,
        "letter": 0,
        "web": 5,
    }
    assert _figures("free_text", {"a": 9}) == {}  # counted, never shown: text can identify
    consent = KINDS["contact_consent"].figures([])["consents"]
    assert consent.reveals == frozenset({1})  # the disclosure gate guards the complement


def test_scales_are_scales() -> None:
    assert all(isinstance(KINDS[name], Scale) for name in SCALES)
