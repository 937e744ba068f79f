"""The words of the messages tilfreds sends, in the respondent's language."""

from __future__ import annotations

from tilfreds.i18n import translator


def first_name(name: str) -> str:
    """The first word of a name, split on any Unicode space (NBSP, ideographic space, tabs ...),
    so no surname reaches a lock screen."""
    words = name.split()
    return words[0] if words else ""


def invitation_sms(*, locale: str, name: str, controller: str, link: str) -> str:
    """The first SMS: who asks, the link, and how to object (GDPR Art. 21(4), P7)."""
    _ = translator(locale)
    given = first_name(name)
    greeting = _("Hi %(name)s!", name=given) if given else _("Hi!")
    body = _(
        "%(controller)s would like to know how satisfied you were with our contact. "
        "Answer here: %(link)s",
        controller=controller,
        link=link,
    )
    return f"{greeting} {body} {_('Reply STOP to opt out.')}"
