"""Scheduling visible at intake (P2): when a case flag delays the survey, or the normal delay
ends outside the recipient's send window, the stored ``send_after`` is already the next opening
in the recipient's own time zone (spread as at send time), so ``GET /api/v1/interactions/{id}``
tells the case system when the SMS will really go. The send side checks again (tests in
tests/test_send_rules.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.factories import interaction_payload
from tilfreds.clock import FrozenClock
from tilfreds.runtime import Runtime


def _send_after(client: TestClient, external_id: str) -> datetime:
    state = client.get(f"/api/v1/interactions/{external_id}")
    assert state.status_code == 200
    [message] = state.json()["messages"]
    assert message["status"] == "queued"
    return datetime.fromisoformat(message["send_after"])


def _take(client: TestClient, clock: FrozenClock, external_id: str, **values: object) -> None:
    payload = interaction_payload(
        external_id=external_id, occurred_at=clock.now().isoformat(), **values
    )
    response = client.post("/api/v1/interactions", json=payload)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("now", "flags", "expected"),
    [
        # Saturday 20:30 CET in Oslo, a one-day delay: it ends on Sunday 28 March 21:30 CEST
        # (Easter Day; the clocks went forward that night); Easter Monday is a holiday; Tuesday
        # 30 March 09:00 CEST is 07:00 UTC
        (datetime(2027, 3, 27, 19, 30, tzinfo=UTC), ["dispute"], datetime(2027, 3, 30, 7, 0)),
        # no flag, Sunday 21:30 CEST: Monday 17 May is Constitution Day, so Tuesday 09:00 CEST
        (datetime(2027, 5, 16, 19, 30, tzinfo=UTC), [], datetime(2027, 5, 18, 7, 0)),
    ],
    ids=["flag-delay-across-dst", "normal-delay-before-a-holiday"],
)
def test_p2_send_after_at_intake_is_the_next_opening_in_local_time(
    client: TestClient,
    rt: Runtime,
    clock: FrozenClock,
    now: datetime,
    flags: list[str],
    expected: datetime,
) -> None:
    rt.settings.send_windows = True
    rt.settings.send_spread_minutes = 0
    rt.settings.flag_dispute = "delay:1d"
    clock._now = now
    _take(client, clock, "the-call", flags=flags)
    assert _send_after(client, "the-call") == expected.replace(tzinfo=UTC)


def _flagged(
    client: TestClient, rt: Runtime, clock: FrozenClock, now: datetime, action: str
) -> datetime:
    """The send_after of an interaction at ``now`` with the flag ``hardship`` set to ``action``."""
    rt.settings.send_windows = True
    rt.settings.flag_hardship = action
    clock._now = now
    _take(client, clock, "flagged", flags=["hardship"])
    return _send_after(client, "flagged")


def test_p2_a_flags_delay_skips_a_norwegian_public_holiday_with_the_spread(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    saturday_noon = datetime(2027, 5, 15, 10, 0, tzinfo=UTC)  # 12:00 CEST
    send_after = _flagged(client, rt, clock, saturday_noon, "delay:2d")
    # Monday 17 May (Constitution Day) 12:00 is closed: Tuesday 18 May 09:00-10:00 CEST
    opening = datetime(2027, 5, 18, 7, 0, tzinfo=UTC)
    assert opening <= send_after < opening + timedelta(hours=1)


def test_a_flags_delay_inside_the_window_is_kept_as_it_is(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    wednesday = datetime(2027, 5, 19, 8, 0, tzinfo=UTC)  # 10:00 CEST
    send_after = _flagged(client, rt, clock, wednesday, "delay:3h")
    assert send_after == datetime(2027, 5, 19, 11, 0, tzinfo=UTC)
