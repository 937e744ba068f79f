"""A survey's SMS texts: filling their placeholders, and checking them when they are saved.

Saving reports each text's encoding and segments (P3: what a message costs). Every invitation must
tell the person how to object (GDPR Art. 21(4), P7): it names a stop word the reply handler knows.
A Norwegian (nb, nn) invitation must fit one GSM-7 segment with the link unless the author allows
longer: a second segment doubles the cost of every survey sent. A two-way survey's invitation and
reminder ask the first question (``{question}``) instead of needing the link.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from tilfreds.errors import InvalidInput
from tilfreds.invitations.conversation_machine import next_question, question_sms
from tilfreds.sms.encoding import GSM7, cost
from tilfreds.surveys.definition import SurveyDefinition, local

PLACEHOLDERS = frozenset({"name", "controller", "link", "question"})
# the reply words that object in every language (invitations/replies.py knows them all)
_OBJECTION = re.compile(r"\b(STOPP|STOP|AVSLUTT|RESERVER|SLUTA|AFMELD|LOPETA)\b")
_ONE_SEGMENT_LOCALES = ("nb", "nn")
SAMPLE_NAME = "Kristoffer"  # a long-ish first name, to size a text as it will be sent
LINK_CODE_LENGTH = 11  # invitations.intake.CODE_LENGTH (a test keeps them equal)
FALLBACK_URL = "https://tilfreds.example.no"  # while no public_url is set


def sample_link(public_url: str) -> str:
    """A link as long as the ones invitations will carry."""
    return f"{(public_url or FALLBACK_URL).rstrip('/')}/s/{'x' * LINK_CODE_LENGTH}"


@dataclass(frozen=True)
class TextReport:
    purpose: str  # invitation, reminder, thanks
    locale: str
    encoding: str
    segments: int
    units: int


def fill(template: str, *, name: str, controller: str, link: str, question: str = "") -> str:
    """The text with its placeholders filled; without a name, "Hei {name}!" becomes "Hei!"."""
    if not name:
        template = template.replace(" {name}", "")
    return template.format(name=name, controller=controller, link=link, question=question)


def render(
    definition: SurveyDefinition,
    purpose: str,
    *,
    locale: str,
    name: str,
    controller: str,
    link: str,
    question: str = "",
) -> str | None:
    """The survey's own text for ``purpose`` (invitation, reminder, thanks) in ``locale``, else in
    its default locale; None when the survey has none (the sender then uses the built-in text)."""
    texts: dict[str, str] = getattr(definition.sms, purpose)
    template = local(texts, locale, definition.default_locale)
    if template is None:
        return None
    return fill(template, name=name, controller=controller, link=link, question=question)


def first_question_sms(definition: SurveyDefinition, locale: str, controller: str) -> str:
    """A two-way survey's first question as its invitation asks it (``{question}``)."""
    first = next_question(definition, {}, None)
    if first is None:
        return ""
    return question_sms(definition, first, locale=locale, controller=controller)


def _placeholders(template: str, where: str) -> None:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    except ValueError:
        raise InvalidInput(f"{where}: unbalanced braces", field=where) from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise InvalidInput(
            f"{where}: placeholders are {{name}}, {{controller}}, {{link}} and {{question}}",
            field=where,
        )


def check_texts(
    definition: SurveyDefinition, *, controller: str, link: str, allow_long: bool = False
) -> list[TextReport]:
    """Check every SMS text of the survey and report what each costs; InvalidInput on the first
    text that breaks a rule, naming it (never quoting it)."""
    reports: list[TextReport] = []
    sms = definition.sms
    two_way = definition.mode == "two_way"
    needed = "question" if two_way else "link"  # what an invitation and a reminder must carry
    for purpose, texts in (
        ("invitation", sms.invitation),
        ("reminder", sms.reminder),
        ("thanks", sms.thanks),
    ):
        for locale, template in sorted(texts.items()):
            where = f"sms.{purpose}.{locale}"
            _placeholders(template, where)
            if purpose != "thanks" and f"{{{needed}}}" not in template:
                raise InvalidInput(f"{where}: the text needs the {{{needed}}}", field=where)
            if purpose == "invitation" and not _OBJECTION.search(template):
                raise InvalidInput(
                    f"{where}: an invitation must say how to object, e.g. 'Svar STOPP for å "
                    "reservere deg' (GDPR Art. 21(4))",
                    field=where,
                )
            # a two-way invitation is sized with its own first question, as it will be sent
            question = first_question_sms(definition, locale, controller) if two_way else ""
            text = fill(
                template, name=SAMPLE_NAME, controller=controller, link=link, question=question
            )
            spent = cost(text)
            reports.append(TextReport(purpose, locale, spent.encoding, spent.segments, spent.units))
            too_long = spent.encoding != GSM7 or spent.segments > 1
            norwegian = purpose == "invitation" and locale in _ONE_SEGMENT_LOCALES
            if norwegian and too_long and not allow_long:
                raise InvalidInput(
                    f"{where}: {spent.segments} segment(s) in {spent.encoding} with the link; a "
                    "Norwegian invitation must fit one GSM-7 segment (allow_long to send it "
                    "anyway)",
                    field=where,
                )
    return reports
