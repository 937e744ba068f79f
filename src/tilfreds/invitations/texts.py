"""The words of the messages tilfreds sends, in the respondent's language."""

from __future__ import annotations

from tilfreds.i18n import Translate, translator


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
