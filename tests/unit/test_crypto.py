"""Field encryption and keyed hashing; keys from settings or a generated development key file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilfreds.crypto import KEY_FILE_NAME, Keys, generate_master_key, load_keys
from tilfreds.errors import ConfigurationError

KEYS = load_keys(generate_master_key(), data_dir=Path("/nonexistent"), allow_generate=False)


@given(st.text(max_size=300))
def test_encryption_round_trips_any_text(value: str) -> None:
    token = KEYS.encrypt(value)
    assert KEYS.decrypt(token) == value
    if len(value.encode()) >= 8:  # shorter byte strings can turn up in random ciphertext
        assert value.encode() not in token


def test_same_value_encrypts_differently_each_time() -> None:
    assert KEYS.encrypt("+4741234567") != KEYS.encrypt("+4741234567")


def test_blind_index_is_stable_and_depends_on_the_key() -> None:
    other = load_keys(generate_master_key(), data_dir=Path("/nonexistent"), allow_generate=False)
    assert KEYS.blind_index("+4741234567") == KEYS.blind_index("+4741234567")
    assert KEYS.blind_index("+4741234567") != other.blind_index("+4741234567")
    assert "41234567" not in KEYS.blind_index("+4741234567")


def test_embedded_setup_generates_a_key_file_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        first = load_keys("", data_dir=tmp_path, allow_generate=True)
    assert "generated a development key" in caplog.text
    assert (tmp_path / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600
    caplog.clear()
    second = load_keys("", data_dir=tmp_path, allow_generate=True)
    assert caplog.text == ""
    assert first.decrypt(second.encrypt("x")) == "x"


def test_server_setup_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TILFREDS_SECRET_KEY is required"):
        load_keys("", data_dir=tmp_path, allow_generate=False)
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_short_or_malformed_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Keys.from_master(b"too short")
    with pytest.raises(ConfigurationError):
        load_keys("***", data_dir=Path("/nonexistent"), allow_generate=False)
