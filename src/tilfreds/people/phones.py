"""Phone numbers and locales as the rest of tilfreds sees them: E.164 mobiles, six locales."""

from __future__ import annotations

import phonenumbers

from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.errors import InvalidInput

_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
_LOCALE_ALIASES = {"no": "nb", "nob": "nb", "nno": "nn", "swe": "sv", "dan": "da", "fin": "fi"}


def parse_mobile(raw: str, *, region: str) -> tuple[phonenumbers.PhoneNumber, int]:
    """The number and its type (mobile, or fixed line or mobile), or InvalidInput saying why it
    cannot receive an SMS."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("phone is not a phone number", field="phone") from exc
    # number_type matches the number against its region's patterns once: UNKNOWN is exactly
    # what is_valid_number refuses (calling both would match twice)
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise InvalidInput("phone is not a valid number", field="phone")
    if kind not in _MOBILE_TYPES:
        raise InvalidInput("phone is not a mobile number, so it cannot receive SMS", field="phone")
    return number, kind


def e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_phone(raw: str, *, region: str) -> str:
    """The number in E.164, or InvalidInput saying why it cannot receive an SMS."""
    return e164(parse_mobile(raw, region=region)[0])


def normalise_locale(raw: str) -> str:
    """``nb-NO`` -> ``nb``; a language tilfreds cannot speak is refused, not guessed."""
    tag = raw.strip().replace("_", "-").split("-")[0].lower()
    tag = _LOCALE_ALIASES.get(tag, tag)
    if tag not in SUPPORTED_LOCALES:
        raise InvalidInput(
            f"locale is not supported; use one of {', '.join(SUPPORTED_LOCALES)}",
            field="locale",
        )
    return tag
