"""The rules and the send window come from settings: per-flag actions, the fatigue window, and
send windows off by default only with the dev transport."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from tilfreds.config import Settings
from tilfreds.errors import ConfigurationError
from tilfreds.invitations.eligibility import CASE_FLAGS, FlagAction
from tilfreds.runtime import build_runtime


def test_defaults_skip_every_flag_and_keep_thirty_days(tmp_path: Path) -> None:
    rules = build_runtime(Settings(data_dir=tmp_path)).rules()
    assert rules.flag_actions == {flag: FlagAction() for flag in CASE_FLAGS}
    assert (rules.fatigue, rules.sampling_rate, rules.daily_quota) == (
        timedelta(days=30),
        1.0,
        None,
    )


def test_flags_fatigue_sampling_and_quota_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TILFREDS_FLAG_DISPUTE", "delay:14d")
    monkeypatch.setenv("TILFREDS_FATIGUE_DAYS", "60")
    monkeypatch.setenv("TILFREDS_SAMPLING_RATE", "0.3")
    monkeypatch.setenv("TILFREDS_DAILY_QUOTA", "500")
    rules = build_runtime(Settings(data_dir=tmp_path)).rules()
    assert rules.flag_actions["dispute"] == FlagAction(timedelta(days=14))
    assert rules.flag_actions["hardship"] == FlagAction()
    assert (rules.fatigue, rules.sampling_rate, rules.daily_quota) == (
        timedelta(days=60),
        0.3,
        500,
    )


@pytest.mark.parametrize("value", ["ignore", "delay:14", "delay:2w", ""])
def test_a_bad_flag_action_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILFREDS_FLAG_DECEASED", value)
    with pytest.raises(ValidationError):
        Settings()


def test_send_windows_are_off_with_the_dev_transport_unless_asked_for(tmp_path: Path) -> None:
    window = build_runtime(Settings(data_dir=tmp_path)).send_window()
    assert not window.enabled
    assert (window.start, window.end, window.no_sundays, window.no_holidays) == (
        time(9),
        time(20),
        True,
        True,
    )
    assert build_runtime(Settings(data_dir=tmp_path, send_windows=True)).send_window().enabled


def test_a_window_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, send_window_start=time(20), send_window_end=time(9))
    with pytest.raises(ConfigurationError, match="SEND_WINDOW_START"):
        build_runtime(settings)
