"""Is an SMS reply an objection (P7)? A pure function: a reply is an objection when it says nothing
but a stop word, perhaps with politeness, greetings, punctuation, emoji or spaces around it.

Words are compared after NFKC normalisation and case folding (so fullwidth STOPP, "Stopp" and
"stopp" are one word), with invisible format characters (soft hyphen, zero-width space) removed. A
stop word inside a sentence ("Jeg vil ikke stoppe betalingen", "Stopp å ringe meg") is NOT an
objection: a person has to read those. The lists, by language (one list: people mix languages):

- nb/nn: STOPP, STOP, AVSLUTT, AVMELD, MELD AV, MELD MEG AV, RESERVER, RESERVER MEG, SLUTT, NEI;
  politeness TAKK, TUSEN TAKK, VENNLIGST, VENLEGST, VÆR SÅ SNILL, VER SÅ SNILL, HEI, HALLO
- sv: STOPP, STOPPA, SLUTA, AVSLUTA, AVREGISTRERA (MIG), AVANMÄL (MIG), AVANMÄLA (also typed
  without ä), NEJ; politeness TACK, TACK SÅ MYCKET, SNÄLLA, HEJ, HALLÅ
- da: STOP, AFMELD (MIG), FRAMELD (MIG) (the invitation says "framelde dig"), AFSLUT, NEJ;
  politeness TAK, MANGE TAK, VENLIGST, HEJ
- fi: LOPETA, SEIS, POIS, POIS LISTALTA, PERU, PERUUTA, EI; politeness KIITOS, KIITOS PALJON,
  OLE HYVÄ, OLE KILTTI, MOI, HEI
- en: the usual SMS opt-out keywords STOP, STOPALL, STOP ALL, UNSUBSCRIBE (ME), CANCEL, END, QUIT,
  OPTOUT, OPT OUT, and NO; politeness PLEASE, PLS, PLZ, THANKS, THANK YOU, MANY THANKS, THX, HI,
  HELLO, OK, OKAY

NEI, NEJ, EI and NO are objections while no two-way conversation is open; inside one they are
answers (``in_conversation``): "Nei" to "May we contact you?" says no to that question only, and a
"no" no question can take is asked again, with how to stop.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+")


def _phrases(*items: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(item.casefold().split()) for item in items)


STOP_PHRASES = _phrases(
    # nb / nn
    "stopp", "stop", "avslutt", "avmeld", "meld av", "meld meg av", "reserver", "reserver meg",
    "slutt", "nei",
    # sv
    "stoppa", "sluta", "avsluta", "avregistrera", "avregistrera mig", "avanmäl", "avanmäla",
    "avanmäl mig", "avanmal", "avanmala", "nej",
    # da
    "afmeld", "afmeld mig", "frameld", "frameld mig", "afslut",
    # fi
    "lopeta", "seis", "pois", "pois listalta", "peru", "peruuta", "ei",
    # en
    "stopall", "stop all", "unsubscribe", "unsubscribe me", "cancel", "end", "quit", "optout",
    "opt out", "no",
)  # fmt: skip

POLITE_PHRASES = _phrases(
    # nb / nn
    "takk", "tusen takk", "vennligst", "venlegst", "vær så snill", "ver så snill", "hei", "hallo",
    # sv
    "tack", "tack så mycket", "snälla", "hej", "hallå",
    # da
    "tak", "mange tak", "venligst",
    # fi
    "kiitos", "kiitos paljon", "ole hyvä", "ole kiltti", "moi",
    # en
    "please", "pls", "plz", "thanks", "thank you", "many thanks", "thx", "hi", "hello",
    "ok", "okay",
)  # fmt: skip

# the bare "no" of each language: an answer inside a two-way conversation, not an objection
NO_WORDS = _phrases("nei", "nej", "ei", "no")
_LONGEST = max(len(p) for p in STOP_PHRASES | POLITE_PHRASES)


def words(text: str) -> list[str]:
    """The reply's words, normalised: NFKC, case folded, invisible format characters dropped."""
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return _WORD.findall(unicodedata.normalize("NFKC", visible).casefold())


def is_objection(text: str, *, in_conversation: bool = False) -> bool:
    """True when the reply is made of stop phrases and politeness only, with at least one stop;
    ``in_conversation``: a bare no is no stop phrase."""
    stops = STOP_PHRASES - NO_WORDS if in_conversation else STOP_PHRASES
    tokens = words(text)
    # reachable[i]: the first i words split into known phrases; the value says whether a stop
    # phrase was among them (True wins). A table, not a greedy scan, so no phrase can hide another.
    reachable: dict[int, bool] = {0: False}
    for start in range(len(tokens)):
        if start not in reachable:
            continue
        for size in range(1, min(_LONGEST, len(tokens) - start) + 1):
            phrase = tuple(tokens[start : start + size])
            if phrase in stops or phrase in POLITE_PHRASES:
                end = start + size
                stop = reachable[start] or phrase in stops
                reachable[end] = reachable.get(end, False) or stop
    return reachable.get(len(tokens), False)
