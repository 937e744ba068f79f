"""The one gate every figure derived from answers passes through before anyone sees it.

The rule, with MIN_GROUP = 5 (k-anonymity):

1. Group. A figure derived from answers is computed on one group: the people who answered that
   question. It is released only when that group has at least MIN_GROUP people, else it is None.
2. Parts. A figure that exposes how many people gave particular answers (``reveals``) is shown
   next to the group's size, so anyone can subtract: 4 "may contact me" out of 5 says the fifth
   said no. It is released only when the part and the rest of the group are each empty or at
   least MIN_GROUP. Empty is allowed: "all 7" or "none of 7" singles no one out, it says the same
   about everyone. Contact consent is the figure this matters for: people who say yes are handed
   by name to follow-up staff (P5), so only the size of the rest keeps the others anonymous.
3. Scores (average, satisfied share, distribution) describe a group of at least MIN_GROUP and are
   not counted per person anywhere else, so rule 1 suffices; hiding small bars would be undone by
   the average, which pins them down.

Counts of participation (invited, sent, responses, answers per question) are not answers and are
shown. Residual risk, not handled here: comparing two snapshots (yesterday 5 answers, today 6)
tells what the sixth person said; a future breakdown (by channel, by week) must go through
``released`` per cell and mind the complement of each cell against its total.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any, TypeVar

MIN_GROUP = 5

T = TypeVar("T")


class Tally:
    """How many people in one group gave each answer to one question; read only via ``released``."""

    def __init__(self, counts: Mapping[Hashable, int]) -> None:
        self._counts = {value: n for value, n in counts.items() if n}
        self.size = sum(self._counts.values())


def _anonymous(people: int) -> bool:
    return people == 0 or people >= MIN_GROUP


def released(
    tally: Tally, figure: Callable[[Mapping[Any, int], int], T], *, reveals: Collection[Any] = ()
) -> T | None:
    """``figure(counts, size)`` if the rule above allows showing it, else None.

    ``reveals``: the answers whose number of people the figure exposes exactly (rule 2).
    """
    if tally.size < MIN_GROUP:
        return None
    if reveals:
        part = sum(tally._counts.get(value, 0) for value in reveals)
        if not (_anonymous(part) and _anonymous(tally.size - part)):
            return None
    return figure(dict(tally._counts), tally.size)
