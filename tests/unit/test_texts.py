"""Respondent-facing text: six languages, complete catalogs, and an SMS that keeps P1 and P7."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.i18n import _catalog, translator
from tilfreds.invitations.inbound import is_objection
from tilfreds.invitations.texts import invitation_sms

SRC = Path(__file__).parents[2] / "src" / "tilfreds"
TRANSLATED = [loc for loc in SUPPORTED_LOCALES if loc != "en"]  # English is the msgid itself
ART_21_4 = "Reply STOP to opt out."  # the first SMS's statement of the right to object


def python_msgids(source: str, where: str) -> set[str]:
    """Every ``_(...)`` call in Python source, in any quoting, concatenation or inside f-strings.

    The parser, not a pattern, finds the calls; a call whose message is not a literal, or a
    translator bound to another name than ``_``, fails, since neither could be checked here.
    """
    tree = ast.parse(source, filename=where)
    bound = {id(node.value) for node in ast.walk(tree) if _binds_underscore(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "_":
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{where}:{node.lineno}: _() needs a literal message"
            )
            found.add(first.value)
        elif node.func.id == "translator":
            assert id(node) in bound, (
                f"{where}:{node.lineno}: bind translator(...) to _ so its messages are found"
            )
    return found


def _binds_underscore(node: ast.AST) -> bool:
    """``_ = <value>`` or a keyword argument ``_=<value>`` (as handed to templates)."""
    if isinstance(node, ast.Assign):
        return [ast.unparse(t) for t in node.targets] == ["_"]
    return isinstance(node, ast.keyword) and node.arg == "_"


def template_msgids(path: Path) -> set[str]:
    """Every ``_(...)`` call in a Jinja template, through Jinja's own Babel extractor."""
    found: set[str] = set()
    with path.open("rb") as fh:
        for lineno, _func, message, _comments in babel_extract(fh, ["_"], [], {}):
            first = message[0] if isinstance(message, tuple) else message
            assert first is not None, f"{path}:{lineno}: _() needs a literal message"
            found.add(first)
    return found


def used_msgids() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= python_msgids(path.read_text(), str(path))
    for path in SRC.rglob("*.html"):
        found |= template_msgids(path)
    return found


@pytest.mark.parametrize(
    "source",
    [
        "_('Reply STOP to opt out.')",
        '_("Reply STOP to opt out.")',
        "_(\n    'Reply STOP '\n    \"to opt out.\"\n)",
        "f\"{greeting} {_('Reply STOP to opt out.')}\"",
        'x = _("Reply STOP to opt out.", name=n) if n else None',
    ],
)
def test_extraction_finds_every_quoting_and_call_form(source: str) -> None:
    assert ART_21_4 in python_msgids(source, "example.py")


def test_extraction_refuses_what_it_cannot_check() -> None:
    with pytest.raises(AssertionError, match="literal"):
        python_msgids("_(message)", "example.py")
    with pytest.raises(AssertionError, match="bind translator"):
        python_msgids("t = translator('nb')\nt('Hi!')", "example.py")


def test_p7_the_art_21_4_sentence_is_extracted_and_in_every_catalog() -> None:
    assert ART_21_4 in used_msgids()
    for locale in TRANSLATED:
        assert _catalog(locale).get(ART_21_4), locale
        assert STOP_WORD[locale] in _catalog(locale)[ART_21_4], locale


@pytest.mark.parametrize("locale", TRANSLATED)
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
