"""Respondent-facing text in nb, nn, sv, da, fi and en, from gettext catalogs (``locales/``).

Catalogs are read from their ``.po`` source when first used, so installing needs no compile step.
English source strings are the msgids; a missing translation falls back to English.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Protocol

from babel.messages.pofile import read_po

from tilfreds.config import SUPPORTED_LOCALES

LOCALE_DIR = Path(__file__).parent / "locales"


class Translate(Protocol):
    def __call__(self, message: str, **values: Any) -> str: ...


@cache
def _catalog(locale: str) -> dict[str, str]:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "tilfreds.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def translator(locale: str) -> Translate:
    """A function that looks an English message up in ``locale`` and fills its placeholders."""
    table = _catalog(locale if locale in SUPPORTED_LOCALES else "en")

    def _(message: str, **values: Any) -> str:
        text = table.get(message, message)
        return text % values if values else text

    return _
