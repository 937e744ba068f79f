"""Field encryption and keyed hashing; keys from settings or a generated development key file."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tilfreds.crypto import Keys, UndecryptableError, context, generate_master_key
from tilfreds.errors import ConfigurationError
from tilfreds.keyring import KEY_FILE_NAME, load_keys

NOWHERE = Path("/nonexistent")
KEYS = load_keys(generate_master_key(), data_dir=NOWHERE, allow_generate=False)
HERE = context("people", "name", "row-1")


@given(st.text(max_size=300))
def test_encryption_round_trips_any_text(value: str) -> None:
    token = KEYS.encrypt(value, context=HERE)
    assert KEYS.decrypt(token, context=HERE) == value
    if len(value.encode()) >= 8:  # shorter byte strings can turn up in random ciphertext
        assert value.encode() not in token


def test_same_value_encrypts_differently_each_time() -> None:
    assert KEYS.encrypt("+4741234567", context=HERE) != KEYS.encrypt("+4741234567", context=HERE)


def test_a_ciphertext_copied_to_another_row_or_column_does_not_decrypt() -> None:
    token = KEYS.encrypt("Kari Nordmann", context=HERE)
    for elsewhere in (
        context("people", "name", "row-2"),
        context("people", "phone", "row-1"),
        context("dev_phone_messages", "name", "row-1"),
    ):
        with pytest.raises(UndecryptableError, match="not stored where it was sealed"):
            KEYS.decrypt(token, context=elsewhere)


def test_ciphertexts_and_indexes_name_their_key_and_previous_keys_still_open_them() -> None:
    old, new = generate_master_key(), generate_master_key()
    before = load_keys(old, data_dir=NOWHERE, allow_generate=False)
    during = load_keys(new, previous_keys=old, data_dir=NOWHERE, allow_generate=False)
    token = before.encrypt("+4741234567", context=HERE)
    assert during.decrypt(token, context=HERE) == "+4741234567"
    assert before.blind_index("+4741234567") in during.blind_indexes("+4741234567")
    assert during.blind_index("+4741234567").startswith(during.current_id + ".")
    with pytest.raises(UndecryptableError, match=f"key {during.current_id}, which is not"):
        before.decrypt(during.encrypt("x", context=HERE), context=HERE)


def test_blind_index_is_stable_and_depends_on_the_key() -> None:
    other = load_keys(generate_master_key(), data_dir=NOWHERE, allow_generate=False)
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
    assert first.decrypt(second.encrypt("x", context=HERE), context=HERE) == "x"


def test_server_setup_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TILFREDS_SECRET_KEY is required"):
        load_keys("", data_dir=tmp_path, allow_generate=False)
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_short_or_malformed_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Keys.from_master(b"too short")
    with pytest.raises(ConfigurationError, match="TILFREDS_SECRET_KEY is not a valid key"):
        load_keys("***", data_dir=NOWHERE, allow_generate=False)
    short = base64.urlsafe_b64encode(b"x" * 8).decode()
    with pytest.raises(ConfigurationError, match="must decode to 32 bytes"):
        load_keys(short, data_dir=NOWHERE, allow_generate=False)
