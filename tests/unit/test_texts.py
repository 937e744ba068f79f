"""Respondent-facing text: six languages, complete catalogs, and an SMS that keeps P1 and P7."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.i18n import _catalog, translator
from tilfreds.invitations.inbound import is_objection
from tilfreds.invitations.texts import invitation_sms

SRC = Path(__file__).parents[2] / "src" / "tilfreds"
_MSGID = re.compile(r'_\(\s*"((?:[^"\\]|\\.)*)"(?:\s*"((?:[^"\\]|\\.)*)")?')


def used_msgids() -> set[str]:
    found: set[str] = set()
    for path in [*SRC.glob("web/templates/*.html"), *SRC.rglob("*.py")]:
        for first, second in _MSGID.findall(path.read_text()):
            found.add(first + second)
    return found


@pytest.mark.parametrize("locale", [loc for loc in SUPPORTED_LOCALES if loc != "en"])
def test_every_respondent_text_is_translated_with_its_placeholders(locale: str) -> None:
    catalog = _catalog(locale)
    ids = used_msgids()
    assert len(ids) >= 20
    missing = sorted(ids - catalog.keys())
    assert not missing, f"{locale} lacks: {missing}"
    for msgid in ids:
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(
            re.findall(r"%\(\w+\)s", catalog[msgid])
        ), (locale, msgid)


STOP_WORD = {"nb": "STOPP", "nn": "STOPP", "sv": "STOPP", "da": "STOP", "fi": "STOP", "en": "STOP"}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_p7_p1_first_sms_names_controller_link_and_how_to_object(locale: str) -> None:
    text = invitation_sms(
        locale=locale, name="Kari Nordmann", controller="Inkasso AS", link="https://x.no/s/abc"
    )
    assert text.startswith(translator(locale)("Hi %(name)s!", name="Kari"))
    assert "Inkasso AS" in text and "https://x.no/s/abc" in text
    assert STOP_WORD[locale] in text
    assert is_objection(STOP_WORD[locale])
    assert "Nordmann" not in text  # first name only: less personal data on a lock screen


@pytest.mark.parametrize("reply", ["STOPP", "stopp", " Stop. ", "nei", "NEJ!", "ei"])
def test_p7_stop_words_are_recognised(reply: str) -> None:
    assert is_objection(reply)


@pytest.mark.parametrize("reply", ["5", "Stopp å ringe meg", "takk", ""])
def test_other_replies_are_not_objections(reply: str) -> None:
    assert not is_objection(reply)
