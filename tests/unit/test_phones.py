"""Phone numbers and locales are normalised or refused with a reason (P9: national settings)."""

from __future__ import annotations

import pytest

from tilfreds.errors import InvalidInput
from tilfreds.people.phones import normalise_locale, normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("412 34 567", "NO", "+4741234567"),
        ("+47 912 34 567", "SE", "+4791234567"),
        ("0047 41234567", "NO", "+4741234567"),
        ("070-123 45 67", "SE", "+46701234567"),
        ("+358 40 1234567", "NO", "+358401234567"),
        ("20 12 34 56", "DK", "+4520123456"),
    ],
)
def test_mobile_numbers_become_e164(raw: str, region: str, e164: str) -> None:
    assert normalise_phone(raw, region=region) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [("22 33 44 55", "not a mobile"), ("12345", "not a valid"), ("call me", "not a phone")],
)
def test_numbers_that_cannot_get_sms_are_refused_with_the_reason(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as exc:
        normalise_phone(raw, region="NO")
    assert exc.value.details["field"] == "phone"


@pytest.mark.parametrize(
    ("raw", "locale"),
    [
        ("nb-NO", "nb"),
        ("no", "nb"),
        ("nn_NO", "nn"),
        ("sv-SE", "sv"),
        ("DA", "da"),
        ("fi", "fi"),
        ("en-GB", "en"),
    ],
)
def test_locale_tags_map_to_the_six_languages(raw: str, locale: str) -> None:
    assert normalise_locale(raw) == locale


def test_unsupported_locale_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidInput, match="not supported"):
        normalise_locale("de-DE")
