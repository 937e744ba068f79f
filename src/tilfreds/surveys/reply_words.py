"""Reading an answer at the start of an SMS reply: digits, number words and yes/no words in nb,
nn, sv, da, fi and en. Pure; used by the kinds' ``parse_reply`` (the two-way SMS survey).

Words are compared after NFKC normalisation and case folding; the reply's own language is tried
first, then the others (people answer in the language they think in). Whatever follows the answer
is returned as the rest, kept by the caller as a comment.
"""

from __future__ import annotations

import re
import unicodedata

NUMBER_WORDS: dict[str, dict[str, int]] = {
    "nb": {
        "null": 0, "en": 1, "ett": 1, "én": 1, "to": 2, "tre": 3, "fire": 4, "fem": 5,
        "seks": 6, "sju": 7, "syv": 7, "åtte": 8, "ni": 9, "ti": 10,
    },
    "nn": {
        "null": 0, "ein": 1, "eitt": 1, "to": 2, "tre": 3, "fire": 4, "fem": 5,
        "seks": 6, "sju": 7, "åtte": 8, "ni": 9, "ti": 10,
    },
    "sv": {
        "noll": 0, "en": 1, "ett": 1, "två": 2, "tre": 3, "fyra": 4, "fem": 5, "sex": 6,
        "sju": 7, "åtta": 8, "nio": 9, "tio": 10,
    },
    "da": {
        "nul": 0, "en": 1, "et": 1, "to": 2, "tre": 3, "fire": 4, "fem": 5, "seks": 6,
        "syv": 7, "otte": 8, "ni": 9, "ti": 10,
    },
    "fi": {
        "nolla": 0, "yksi": 1, "kaksi": 2, "kolme": 3, "neljä": 4, "viisi": 5, "kuusi": 6,
        "seitsemän": 7, "kahdeksan": 8, "yhdeksän": 9, "kymmenen": 10,
    },
    "en": {
        "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
        "eight": 8, "nine": 9, "ten": 10,
    },
}  # fmt: skip

YES_NO_WORDS: dict[str, dict[str, bool]] = {
    "nb": {"ja": True, "j": True, "jepp": True, "nei": False, "n": False},
    "nn": {"ja": True, "j": True, "nei": False, "n": False},
    "sv": {"ja": True, "j": True, "nej": False, "n": False},
    "da": {"ja": True, "j": True, "nej": False, "n": False},
    "fi": {"kyllä": True, "joo": True, "ei": False},
    "en": {"yes": True, "y": True, "yeah": True, "no": False, "n": False},
}

_TOKEN = re.compile(r"\w+", re.UNICODE)
_TRIM = re.compile(r"^\W+|\W+$", re.UNICODE)


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").casefold()


def _languages(locale: str) -> list[str]:
    return [locale, *(code for code in NUMBER_WORDS if code != locale)]


def _first_word(text: str) -> tuple[str, str] | None:
    """The first word of ``text`` (normalised) and the original text after it."""
    normal = _normal(text)
    found = _TOKEN.search(normal)
    if found is None:
        return None
    # NFKC and casefold may change lengths; cut the original at the same word count instead
    words = text.split(maxsplit=1)
    prefix = _normal(words[0]) if words else ""
    rest = words[1] if len(words) > 1 and _TRIM.sub("", prefix) == found.group() else ""
    return found.group(), rest.strip()


def leading_number(text: str, locale: str) -> tuple[int | None, str]:
    """The number a reply starts with (digits or a word), and the rest of the reply."""
    first = _first_word(text)
    if first is None:
        return None, ""
    word, rest = first
    if text.lstrip().startswith(("-", "\u2212")):
        return None, ""  # a negative number is no score
    digits = re.fullmatch(r"\d{1,2}", word)
    if digits and word.isascii():
        return int(word), rest
    for code in _languages(locale):
        if word in NUMBER_WORDS[code]:
            return NUMBER_WORDS[code][word], rest
    return None, ""


def leading_yes_no(text: str, locale: str) -> tuple[bool | None, str]:
    """Yes or no at the start of a reply (JA, NEI, YES, NO, in every language), and the rest."""
    first = _first_word(text)
    if first is None:
        return None, ""
    word, rest = first
    for code in _languages(locale):
        if word in YES_NO_WORDS[code]:
            return YES_NO_WORDS[code][word], rest
    return None, ""
