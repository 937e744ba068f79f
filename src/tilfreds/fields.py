"""Field types for input schemas: text every supported database can store and show, times in a
sane range, and a person's name that is only a name (P10: no other personal data slips in).

Each check raises ValueError with a message that never repeats the value it refused.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

# PostgreSQL refuses NUL in text and UTF-8 cannot encode a lone surrogate (JSON lets "\ud800"
# through); control characters and line separators in names or ids only come from broken or
# hostile clients. All are refused at the edge rather than failing deeper in.
_NEVER = frozenset({"Cs"})
_NOT_IN_A_LINE = frozenset({"Cc", "Cs", "Zl", "Zp"})
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})  # spaces, controls, zero-width marks

EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
NAME_MAX_CHARS, NAME_MAX_WORDS = 100, 6
# a dot between a word and a lower-case word ("bit.ly", "example.no"), not an initial ("J. R.")
_ASCII_DIGIT = re.compile(r"[0-9]")  # the only numbers ASCII has
_WEB_ADDRESS = re.compile(r"://|(?i:www\.)|@|[\w-]\.[a-z]{2,}")


def _category(char: str) -> str:
    return unicodedata.category(char)


def single_line(value: str) -> str:
    if value.isascii() and value.isprintable():  # the common case, without a look at each char
        return value
    if any(_category(c) in _NOT_IN_A_LINE for c in value):
        raise ValueError("must not contain control characters such as line breaks or NUL")
    return value


def storable(value: str) -> str:
    for c in value:
        if _category(c) in _NEVER or (_category(c) == "Cc" and c not in "\n\r\t"):
            raise ValueError("must not contain control characters other than line breaks and tabs")
    return value


def not_blank(value: str) -> str:
    if value[:1].isalnum():  # starts with a letter or digit: not blank
        return value
    if all(c.isspace() or _category(c) in _INVISIBLE for c in value):
        raise ValueError("must not be blank")
    return value


def in_calendar_range(value: datetime) -> datetime:
    # checked on the local year before anything converts it: year 1 or 9999 overflows in UTC
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _has_number(value: str) -> bool:
    """0-9, or a number of another script (², Ⅷ); ASCII has only 0-9."""
    if value.isascii():
        return _ASCII_DIGIT.search(value) is not None
    return any(_category(c).startswith("N") for c in value)


def person_name(value: str) -> str:
    """A short person's name: no web or e-mail address, no digits, at most six words (the
    length limit is the field's ``max_length``, so the schema shows it)."""
    if _WEB_ADDRESS.search(value):
        raise ValueError("must be a person's name, not a web address or e-mail address")
    if _has_number(value):
        raise ValueError("must be a person's name, without digits (no ids or phone numbers)")
    if len(value.split()) > NAME_MAX_WORDS:
        raise ValueError(f"must be a person's name of at most {NAME_MAX_WORDS} words")
    return value


Line = Annotated[str, AfterValidator(single_line)]
Text = Annotated[str, AfterValidator(storable)]
FilledLine = Annotated[str, AfterValidator(single_line), AfterValidator(not_blank)]
PersonName = Annotated[
    str, AfterValidator(single_line), AfterValidator(not_blank), AfterValidator(person_name)
]
Moment = Annotated[AwareDatetime, AfterValidator(in_calendar_range)]
