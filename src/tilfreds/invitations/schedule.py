"""When a survey SMS may reach a person: a send window in the recipient's own local time, no
Sundays and no public holidays of the recipient's country (P2: a decent hour). Pure functions.

The recipient's country and time zone follow from the phone number (``phonenumbers``). A country
with several zones gets the zone ``phonenumbers`` gives that number when it gives one; otherwise
its main zone (``MAIN_ZONES``: Norway -> Europe/Oslo, not Svalbard's Arctic/Longyearbyen, which
keeps the same time anyway), and a number with no known zone the default (Europe/Oslo).
Public holidays come from the ``holidays`` package; a country it does not know has none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from phonenumbers import timezone as phone_zones

DEFAULT_ZONE = "Europe/Oslo"
# the zone that most of a country's people live in, where a number maps to several zones
MAIN_ZONES = {
    "NO": "Europe/Oslo",
    "SE": "Europe/Stockholm",
    "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "RU": "Europe/Moscow",
    "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
}
_SEARCH_DAYS = 30  # no country closes for longer than this


@dataclass(frozen=True)
class SendWindow:
    start: time  # local time of the recipient
    end: time
    no_sundays: bool
    no_holidays: bool
    enabled: bool
    spread: timedelta = timedelta(minutes=60)  # an opening's first part, over which sends spread


def country_for(phone_e164: str) -> str:
    """The ISO country of a number ("NO"), or "" when it cannot be told."""
    return place_for(phone_e164)[1]


def zone_for(phone_e164: str) -> ZoneInfo:
    """The recipient's time zone, from the number's country."""
    return zone_named(place_for(phone_e164)[0])


def place_for(phone_e164: str) -> tuple[str, str]:
    """The number's time zone name and ISO country ("" when it cannot be told), from one parse."""
    try:
        number = phonenumbers.parse(phone_e164)
    except phonenumbers.NumberParseException:
        return DEFAULT_ZONE, ""
    return place_of(number, phonenumbers.number_type(number))


# country code -> the zones phonenumbers gives a number of a non-geographical type there: it
# looks at the country code only for those (a mobile, outside the few countries whose mobile
# numbers are geographical), so one lookup serves every such number of the country
_COUNTRY_ZONES: dict[int, tuple[str, ...]] = {}


def place_of(number: phonenumbers.PhoneNumber, kind: int) -> tuple[str, str]:
    """The time zone name and ISO country of a parsed number of type ``kind`` (intake has both
    from the phone's own check, so the number is parsed once). A country with several zones gets
    the zone ``phonenumbers`` gives that number when it gives one, else its main zone."""
    code = number.country_code or 0
    region = phonenumbers.region_code_for_number(number) or ""
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        zones: tuple[str, ...] = ()  # an invalid number: no zone of its own
    elif phonenumbers.is_number_type_geographical(kind, code):
        zones = tuple(phone_zones.time_zones_for_number(number))
    elif code in _COUNTRY_ZONES:
        zones = _COUNTRY_ZONES[code]
    else:
        zones = _COUNTRY_ZONES[code] = tuple(phone_zones.time_zones_for_number(number))
    known = [z for z in zones if z != "Etc/Unknown"]
    if len(known) == 1:
        return known[0], region
    if region in MAIN_ZONES:
        return MAIN_ZONES[region], region
    return (sorted(known)[0] if known else DEFAULT_ZONE), region


@cache
def zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@cache
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year))
    except NotImplementedError:  # a country the package does not know
        return frozenset()


def is_open_day(day: date, *, country: str, window: SendWindow) -> bool:
    if window.no_sundays and day.isoweekday() == 7:
        return False
    return not (window.no_holidays and country and day in _holidays(country, day.year))


def _spread(key: str, window: SendWindow, opening: datetime, closing: datetime) -> timedelta:
    """A deterministic share of the opening's first part, so an opening has no spike."""
    room = min(window.spread, closing - opening - timedelta(minutes=1))
    seconds = int(room.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return timedelta(seconds=int.from_bytes(digest, "big") % seconds)


def next_opening(
    earliest: datetime, *, zone: ZoneInfo, country: str, window: SendWindow, spread_key: str
) -> datetime:
    """``earliest`` if the window is open then, else the window's next opening (in UTC) plus a
    spread by ``spread_key``. Wall-clock arithmetic in ``zone``, so DST changes are kept."""
    if not window.enabled:
        return earliest
    local = earliest.astimezone(zone)
    day = local.date()
    if is_open_day(day, country=country, window=window) and window.start <= local.time():
        if local.time() < window.end:
            return earliest
        day += timedelta(days=1)  # after today's closing
    for _ in range(_SEARCH_DAYS):
        if is_open_day(day, country=country, window=window):
            break
        day += timedelta(days=1)
    opening = datetime.combine(day, window.start, tzinfo=zone)
    closing = datetime.combine(day, window.end, tzinfo=zone)
    # ZoneInfo datetimes add by wall clock; going through UTC keeps real elapsed time
    return opening.astimezone(UTC) + _spread(spread_key, window, opening, closing)
