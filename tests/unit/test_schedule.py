"""Send windows in the recipient's local time (P2: a decent hour): across the DST changes of
Europe/Oslo, on Sundays and on Norwegian public holidays, spread over the opening. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as phone_zones

from tilfreds.invitations.schedule import (
    SendWindow,
    country_for,
    next_opening,
    place_of,
    zone_for,
)
from tilfreds.people.phones import e164, parse_mobile

OSLO = ZoneInfo("Europe/Oslo")
WINDOW = SendWindow(
    start=time(9), end=time(20), no_sundays=True, no_holidays=True, enabled=True,
    spread=timedelta(0),
)  # fmt: skip


def opening(local: datetime, window: SendWindow = WINDOW, key: str = "k") -> datetime:
    found = next_opening(
        local.astimezone(UTC), zone=OSLO, country="NO", window=window, spread_key=key
    )
    assert found.utcoffset() == timedelta(0)
    return found.astimezone(OSLO)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)  # type: ignore[misc]


def test_inside_the_window_is_now() -> None:
    assert opening(oslo(2027, 3, 3, 12, 30)) == oslo(2027, 3, 3, 12, 30)


def test_before_opening_waits_for_nine_the_same_day() -> None:
    assert opening(oslo(2027, 3, 3, 6, 0)) == oslo(2027, 3, 3, 9, 0)


def test_after_closing_waits_for_the_next_morning() -> None:
    assert opening(oslo(2027, 3, 3, 20, 0)) == oslo(2027, 3, 4, 9, 0)


def test_saturday_evening_skips_sunday() -> None:
    assert opening(oslo(2027, 3, 6, 21, 0)) == oslo(2027, 3, 8, 9, 0)
    assert opening(oslo(2027, 3, 6, 21, 0), replace(WINDOW, no_sundays=False)) == oslo(
        2027, 3, 7, 9, 0
    )


def test_p2_dst_spring_forward_and_easter_monday() -> None:
    # 2027-03-28 (Sunday, Easter Day) clocks go 02:00 -> 03:00; Monday 29 March is Easter Monday
    found = opening(oslo(2027, 3, 27, 20, 30))
    assert found == oslo(2027, 3, 30, 9, 0)
    assert found.astimezone(UTC) == datetime(2027, 3, 30, 7, 0, tzinfo=UTC)  # CEST: UTC+2
    no_holidays = replace(WINDOW, no_holidays=False)
    assert opening(oslo(2027, 3, 27, 20, 30), no_holidays).astimezone(UTC) == datetime(
        2027, 3, 29, 7, 0, tzinfo=UTC
    )


def test_p2_dst_fall_back() -> None:
    # 2027-10-31 (Sunday) clocks go 03:00 -> 02:00: Monday's 09:00 is 08:00 UTC, not 07:00
    found = opening(oslo(2027, 10, 30, 22, 0))
    assert found.astimezone(UTC) == datetime(2027, 11, 1, 8, 0, tzinfo=UTC)
    # 19:59 local on the Saturday before is still open, 20:00 is not
    assert opening(oslo(2027, 10, 30, 19, 59)) == oslo(2027, 10, 30, 19, 59)


def test_p2_constitution_day_is_closed() -> None:
    assert opening(oslo(2027, 5, 16, 12, 0)) == oslo(2027, 5, 18, 9, 0)  # Sunday then 17 May
    assert opening(oslo(2026, 5, 17, 8, 0)) == oslo(2026, 5, 18, 9, 0)


def test_holidays_are_the_recipients_country() -> None:
    # 6 June is Sweden's national day, not a Norwegian holiday (2029-06-06 is a Wednesday)
    evening = oslo(2029, 6, 5, 21, 0).astimezone(UTC)
    stockholm = ZoneInfo("Europe/Stockholm")
    kw = {"window": WINDOW, "spread_key": "k"}
    assert next_opening(evening, zone=stockholm, country="SE", **kw).astimezone(
        stockholm
    ) == datetime(2029, 6, 7, 9, tzinfo=stockholm)  # type: ignore[arg-type]
    assert next_opening(evening, zone=OSLO, country="NO", **kw) == oslo(2029, 6, 6, 9, 0)  # type: ignore[arg-type]


def test_disabled_window_sends_at_once() -> None:
    night = oslo(2027, 5, 17, 3, 0)
    assert opening(night, replace(WINDOW, enabled=False)) == night


def test_spread_is_deterministic_within_the_first_part_of_the_opening() -> None:
    window = replace(WINDOW, spread=timedelta(minutes=60))
    found = {opening(oslo(2027, 3, 3, 22, 0), window, f"key-{n}") for n in range(200)}
    assert all(oslo(2027, 3, 4, 9, 0) <= f < oslo(2027, 3, 4, 10, 0) for f in found)
    assert len({f.minute for f in found}) > 30  # no spike at 09:00
    assert opening(oslo(2027, 3, 3, 22, 0), window, "key-1") == opening(
        oslo(2027, 3, 3, 22, 0), window, "key-1"
    )


@pytest.mark.parametrize(
    ("phone", "zone", "country"),
    [
        ("+4791234567", "Europe/Oslo", "NO"),  # phonenumbers also lists Arctic/Longyearbyen
        ("+46701234567", "Europe/Stockholm", "SE"),
        ("+4520123456", "Europe/Copenhagen", "DK"),
        ("+358401234567", "Europe/Helsinki", "FI"),
        ("+12025550123", "America/New_York", "US"),
    ],
)
def test_zone_and_country_from_the_number(phone: str, zone: str, country: str) -> None:
    assert zone_for(phone) == ZoneInfo(zone)
    assert country_for(phone) == country


def test_an_unreadable_number_gets_the_default_zone() -> None:
    assert zone_for("garbage") == OSLO
    assert country_for("garbage") == ""


@pytest.mark.parametrize(
    "raw",
    [
        "+4791234567",
        "+4741234567",
        "+46701234567",
        "+358401234567",
        "+12025550123",  # fixed line or mobile: geographical, the number's own zone
        "+13105550123",
        "+5511987654321",  # Brazil's mobiles are geographical
        "+5592987654321",
        "+447911123456",
    ],
)
def test_the_place_from_intakes_one_parse_is_the_numbers_own(raw: str) -> None:
    number, kind = parse_mobile(raw, region="NO")
    invalid = phonenumbers.parse("+4412", None)  # its zones must not stand for all of +44
    place_of(invalid, phonenumbers.PhoneNumberType.UNKNOWN)
    zones = [z for z in phone_zones.time_zones_for_number(number) if z != "Etc/Unknown"]
    zone, country = place_of(number, kind)
    assert country == phonenumbers.region_code_for_number(number)
    assert zone in zones and ZoneInfo(zone) == zone_for(e164(number))
    assert country == country_for(e164(number))
