"""The question kinds, in one registry: each kind knows how to offer its answers on the web form,
parse and check a submitted value (form field or SMS reply) and aggregate its answers for reports.

Templates, the answer parser and the reports look a kind up here and never name one themselves, so
a new kind is one entry in ``KINDS`` (plus its widget template if it needs a new one). Keeps P4
(answers rate the interaction they were asked about) and P8 (an empty answer is a skipped question,
never an error unless the survey requires it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tilfreds.errors import InvalidInput
from tilfreds.i18n import Translate
from tilfreds.surveys import reply_words

FREE_TEXT_MAX = 2000


def _(message: str) -> str:
    """Marks a kind's wording for the catalogs (``locales/``); translated where it is shown."""
    return message


def translated(translate: Translate, message: str, **values: Any) -> str:
    """A marked message in the respondent's language."""
    return translate(message, **values)


@dataclass(frozen=True)
class Value:
    """One stored answer: a number (a score, 1/0 for yes/no, a choice's position) and/or text
    (free text, the chosen option's key, or the rest of an SMS reply kept as a comment)."""

    number: int | None = None
    text: str | None = None

    @property
    def empty(self) -> bool:
        return self.number is None and not self.text


@dataclass(frozen=True)
class Figure:
    compute: Callable[[Mapping[Any, int], int], Any]
    reveals: frozenset[Any] = frozenset()  # answers whose exact number of people it exposes


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    hint: str | None = None  # read by screen readers at the scale's ends


class Kind:
    """What every kind provides. ``widget`` names the template ``questions/<widget>.html``."""

    name: str = ""
    widget: str = ""
    default_text: str = ""  # an English msgid, translated; may use %(controller)s
    tallied_by: str = "number"  # which part of a stored Value the report counts people by

    def options(self, choices: Sequence[tuple[str, str]], translate: Translate) -> list[Option]:
        """The answers the form offers; ``choices`` are (key, label) for kinds that have them."""
        return []

    def parse_form(self, raw: str, choices: Sequence[str]) -> Value:
        raise NotImplementedError

    def parse_reply(self, text: str, locale: str, choices: Sequence[str]) -> Value:
        """An SMS reply; raises InvalidInput when no answer can be read from it."""
        raise NotImplementedError

    def reply_hint(self, choices: Sequence[tuple[str, str]], translate: Translate) -> str:
        """How to answer by SMS, said after the question in a two-way survey; empty: no hint."""
        return ""

    def figures(self, choices: Sequence[str]) -> dict[str, Figure]:
        """The report's figures for this kind, computed from ``{answer: people}`` and the group's
        size; ``reporting`` passes each through its disclosure gate. Empty: a count only."""
        return {}


def _mean(counts: Mapping[Any, int], size: int) -> float:
    total: float = sum(value * n for value, n in counts.items())
    return round(total / size, 2)


@dataclass(frozen=True)
class Band:
    """A named stretch of a scale the report shows as a share, e.g. NPS promoters, 9 to 10."""

    name: str
    low: int
    high: int


@dataclass(frozen=True, kw_only=True)
class Scale(Kind):
    """A score from ``low`` to ``high``; ``score`` turns the distribution into the headline,
    described for staff by ``score_label`` (a share when ``score_is_share``); ``bands``, if any,
    split the answers into named shares."""

    name: str
    low: int
    high: int
    default_text: str
    low_label: str
    high_label: str
    score: Callable[[Mapping[Any, int], int], float] = _mean
    score_label: str = "average"
    score_is_share: bool = False
    bands: tuple[Band, ...] = ()
    widget: str = "scale"

    def options(self, choices: Sequence[tuple[str, str]], translate: Translate) -> list[Option]:
        ends = {
            self.low: translated(translate, self.low_label),
            self.high: translated(translate, self.high_label),
        }
        return [Option(str(n), str(n), ends.get(n)) for n in range(self.low, self.high + 1)]

    def _in_range(self, number: int) -> bool:
        return self.low <= number <= self.high

    def parse_form(self, raw: str, choices: Sequence[str]) -> Value:
        if not (raw.isascii() and raw.isdigit() and self._in_range(int(raw))):
            raise InvalidInput(
                f"a {self.name} score is a whole number from {self.low} to {self.high}"
            )
        return Value(number=int(raw))

    def parse_reply(self, text: str, locale: str, choices: Sequence[str]) -> Value:
        number, rest = reply_words.leading_number(text, locale)
        if number is None or not self._in_range(number):
            raise InvalidInput(f"a {self.name} score is a number from {self.low} to {self.high}")
        return Value(number=number, text=rest or None)

    def reply_hint(self, choices: Sequence[tuple[str, str]], translate: Translate) -> str:
        return translated(
            translate,
            _("Reply %(low)s-%(high)s (%(low)s = %(low_label)s, %(high)s = %(high_label)s)."),
            low=self.low,
            high=self.high,
            low_label=translated(translate, self.low_label).lower(),
            high_label=translated(translate, self.high_label).lower(),
        )

    def figures(self, choices: Sequence[str]) -> dict[str, Figure]:
        def distribution(c: Mapping[Any, int], _size: int) -> dict[int, int]:
            return {n: c.get(n, 0) for n in range(self.low, self.high + 1)}

        def bands(c: Mapping[Any, int], size: int) -> dict[str, float]:
            return {
                b.name: round(sum(c.get(n, 0) for n in range(b.low, b.high + 1)) / size, 3)
                for b in self.bands
            }

        # the bands are shares of a group of at least MIN_GROUP, like the distribution they sum
        return {
            "score": Figure(self.score),
            "mean": Figure(_mean),
            "distribution": Figure(distribution),
        } | ({"bands": Figure(bands)} if self.bands else {})


def _satisfied_share(counts: Mapping[Any, int], size: int) -> float:
    """CSAT: the share answering 4 or 5."""
    return round(sum(counts.get(n, 0) for n in (4, 5)) / size, 3)


def _net_promoter(counts: Mapping[Any, int], size: int) -> float:
    """NPS: per cent promoters (9-10) minus per cent detractors (0-6), from -100 to 100."""
    promoters = sum(counts.get(n, 0) for n in (9, 10))
    detractors = sum(counts.get(n, 0) for n in range(7))
    return round(100 * (promoters - detractors) / size, 1)


@dataclass(frozen=True)
class Choice(Kind):
    """One option of the survey's ``choices``; stores its position and key."""

    name: str = "single_choice"
    widget: str = "choice"
    tallied_by: str = "text"
    default_text: str = _("Which fits best?")

    def options(self, choices: Sequence[tuple[str, str]], translate: Translate) -> list[Option]:
        return [Option(key, label) for key, label in choices]

    def parse_form(self, raw: str, choices: Sequence[str]) -> Value:
        if raw not in choices:
            raise InvalidInput("pick one of the options offered")
        return Value(number=list(choices).index(raw) + 1, text=raw)

    def parse_reply(self, text: str, locale: str, choices: Sequence[str]) -> Value:
        number, _rest = reply_words.leading_number(text, locale)
        if number is None or not 1 <= number <= len(choices):
            raise InvalidInput("reply with the number of an option")
        return Value(number=number, text=choices[number - 1])

    def reply_hint(self, choices: Sequence[tuple[str, str]], translate: Translate) -> str:
        numbered = ", ".join(f"{n} = {label}" for n, (_key, label) in enumerate(choices, 1))
        return f"{translated(translate, _('Reply with a number:'))} {numbered}."

    def figures(self, choices: Sequence[str]) -> dict[str, Figure]:
        def distribution(c: Mapping[Any, int], _size: int) -> dict[str, int]:
            return {key: c.get(key, 0) for key in choices}

        return {"distribution": Figure(distribution)}


@dataclass(frozen=True)
class FreeText(Kind):
    """Free text. Reports count it only: what someone wrote can identify them."""

    name: str = "free_text"
    widget: str = "text"
    default_text: str = _("Is there anything you would like to tell us?")
    max_length: int = FREE_TEXT_MAX

    def parse_form(self, raw: str, choices: Sequence[str]) -> Value:
        if len(raw) > self.max_length:
            raise InvalidInput(f"at most {self.max_length} characters")
        return Value(text=raw)

    def parse_reply(self, text: str, locale: str, choices: Sequence[str]) -> Value:
        return self.parse_form(text.strip(), choices)


@dataclass(frozen=True)
class Consent(Kind):
    """May we contact you (P5): yes (1) or no (0). "No" here is an answer, not an objection."""

    name: str = "contact_consent"
    widget: str = "yesno"
    default_text: str = _("May we contact you about your feedback?")
    answers: Mapping[str, int] = field(default_factory=lambda: {"yes": 1, "no": 0})

    def options(self, choices: Sequence[tuple[str, str]], translate: Translate) -> list[Option]:
        return [
            Option("yes", translated(translate, _("Yes, you may contact me"))),
            Option("no", translated(translate, _("No, please do not contact me"))),
        ]

    def parse_form(self, raw: str, choices: Sequence[str]) -> Value:
        if raw not in self.answers:
            raise InvalidInput("contact permission is 'yes' or 'no'")
        return Value(number=self.answers[raw])

    def parse_reply(self, text: str, locale: str, choices: Sequence[str]) -> Value:
        answer, rest = reply_words.leading_yes_no(text, locale)
        if answer is None:
            raise InvalidInput("reply yes or no")
        return Value(number=int(answer), text=rest or None)

    def reply_hint(self, choices: Sequence[tuple[str, str]], translate: Translate) -> str:
        return translated(translate, _("Reply YES or NO."))

    def figures(self, choices: Sequence[str]) -> dict[str, Figure]:
        return {"consents": Figure(lambda c, _size: c.get(1, 0), reveals=frozenset({1}))}


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Scale(
            name="csat",
            low=1,
            high=5,
            default_text=_("How satisfied are you with how %(controller)s handled your case?"),
            low_label=_("Very dissatisfied"),
            high_label=_("Very satisfied"),
            score=_satisfied_share,
            score_label="satisfied (4–5)",
            score_is_share=True,
        ),
        Scale(
            name="nps",
            low=0,
            high=10,
            default_text=_("How likely is it that you would recommend %(controller)s to others?"),
            low_label=_("Not at all likely"),
            high_label=_("Extremely likely"),
            score=_net_promoter,
            score_label="net promoter score (% promoters − % detractors)",
            bands=(Band("detractors", 0, 6), Band("passives", 7, 8), Band("promoters", 9, 10)),
        ),
        Scale(
            name="ces",
            low=1,
            high=7,
            default_text=_("How easy was it to get your case handled?"),
            low_label=_("Very difficult"),
            high_label=_("Very easy"),
            score_label="average effort score (7 = very easy)",
        ),
        Choice(),
        FreeText(),
        Consent(),
    )
}


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidInput(f"unknown question kind; one of {', '.join(KINDS)}") from None


def parse_reply(kind_name: str, text: str, locale: str, choices: Sequence[str] = ()) -> Value:
    """An SMS reply to a question of this kind, read tolerantly (digits, number words in the six
    languages, yes/no words); text after the answer is kept as a comment. InvalidInput when no
    answer can be read, so the caller can ask again."""
    return kind(kind_name).parse_reply(text, locale, choices)
