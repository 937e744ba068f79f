"""The words of the messages tilfreds sends, in the respondent's language: a survey version's own
SMS texts where it has them (in the person's language, else the survey's default language), else
the built-in ones. Rendered at send time from current data, so a rectified name is used (P17)."""

from __future__ import annotations

from tilfreds.i18n import Translate, translator
from tilfreds.surveys import sms_texts
from tilfreds.surveys.definition import SurveyDefinition


def first_name(name: str) -> str:
    """The first word of a name, split on any Unicode space (NBSP, ideographic space, tabs ...),
    so no surname reaches a lock screen."""
    words = name.split()
    return words[0] if words else ""


def _survey_sms(_: Translate, name: str, body: str) -> str:
    """A greeting by first name, the body, and how to object (GDPR Art. 21(4), P7)."""
    given = first_name(name)
    greeting = _("Hi %(name)s!", name=given) if given else _("Hi!")
    return f"{greeting} {body} {_('Reply STOP to opt out.')}"


def invitation_sms(*, locale: str, name: str, controller: str, link: str) -> str:
    """The first SMS: who asks, the link, and how to object (GDPR Art. 21(4), P7)."""
    _ = translator(locale)
    body = _(
        "%(controller)s would like to know how satisfied you were with our contact. "
        "Answer here: %(link)s",
        controller=controller,
        link=link,
    )
    return _survey_sms(_, name, body)


def reminder_sms(*, locale: str, name: str, controller: str, link: str) -> str:
    """A reminder of an unanswered invitation (P2): the same facts, again how to object (P7)."""
    _ = translator(locale)
    body = _(
        "A reminder: %(controller)s would like to know how satisfied you were with our "
        "contact. Answer here: %(link)s",
        controller=controller,
        link=link,
    )
    return _survey_sms(_, name, body)


def _two_way_sms(*, locale: str, name: str, controller: str, question: str, again: bool) -> str:
    """The built-in invitation (or reminder) of a two-way survey: it asks the first question."""
    _ = translator(locale)
    if again:
        body = _(
            "A reminder: %(controller)s would like to know what you think. %(question)s",
            controller=controller,
            question=question,
        )
    else:
        body = _(
            "%(controller)s would like to know what you think. %(question)s",
            controller=controller,
            question=question,
        )
    return _survey_sms(_, name, body)


def survey_sms(
    definition: SurveyDefinition | None,
    purpose: str,
    *,
    locale: str,
    name: str,
    controller: str,
    link: str,
) -> str:
    """An invitation or a reminder (``purpose``) of the survey version ``definition`` (None: the
    built-in text). A two-way survey's asks its first question (``{question}``)."""
    question = ""
    if definition is not None and definition.mode == "two_way":
        question = sms_texts.first_question_sms(definition, locale, controller)
    if definition is not None:
        own = sms_texts.render(
            definition,
            purpose,
            locale=locale,
            name=first_name(name),
            controller=controller,
            link=link,
            question=question,
        )
        if own is not None:
            return own
        if definition.mode == "two_way":
            return _two_way_sms(
                locale=locale,
                name=name,
                controller=controller,
                question=question,
                again=purpose == "reminder",
            )
    builtin = reminder_sms if purpose == "reminder" else invitation_sms
    return builtin(locale=locale, name=name, controller=controller, link=link)


def thanks_sms(definition: SurveyDefinition, *, locale: str, name: str, controller: str) -> str:
    """The SMS after the last answer of a two-way survey."""
    own = sms_texts.render(
        definition, "thanks", locale=locale, name=first_name(name), controller=controller, link=""
    )
    _ = translator(locale)
    return own if own is not None else _("Thank you for your answer!")


def objection_confirmation_sms(*, locale: str, controller: str) -> str:
    """The one SMS after an objection (P7): it worked, and nothing more is coming."""
    _ = translator(locale)
    return _(
        "You will get no more surveys from %(controller)s. Thank you for letting us know.",
        controller=controller,
    )


# the language of a number's country, for a recipient whose own we do not hold
_COUNTRY_LOCALES = {"NO": "nb", "SE": "sv", "DK": "da", "FI": "fi", "AX": "sv"}


def locale_for_country(country: str) -> str:
    return _COUNTRY_LOCALES.get(country, "en")
