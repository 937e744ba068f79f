"""Text field types for input schemas: text every supported database can store and show.

PostgreSQL refuses NUL in text, and control characters in names or ids only ever come from broken
or hostile clients, so both are refused with a 422 at the edge rather than failing deeper in.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def single_line(value: str) -> str:
    if any(_is_control(c) for c in value):
        raise ValueError("must not contain control characters such as line breaks or NUL")
    return value


def storable(value: str) -> str:
    if any(_is_control(c) and c not in "\n\r\t" for c in value):
        raise ValueError("must not contain control characters other than line breaks and tabs")
    return value


Line = Annotated[str, AfterValidator(single_line)]
Text = Annotated[str, AfterValidator(storable)]
