"""Start-up refuses configuration it cannot run safely, with a message that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tilfreds.config import Settings
from tilfreds.crypto import generate_master_key
from tilfreds.errors import ConfigurationError
from tilfreds.runtime import build_runtime

PG = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never connected to by build_runtime


def test_dev_transport_is_refused_on_a_server_unless_asked_for(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=PG, secret_key=generate_master_key())
    with pytest.raises(ConfigurationError, match="TILFREDS_DEV_TRANSPORT_ON_SERVER"):
        build_runtime(settings)
    settings.dev_transport_on_server = True
    assert build_runtime(settings).dev_phone_enabled


def test_alphanumeric_sender_is_refused_because_nobody_could_reply(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="numeric"):
        build_runtime(Settings(data_dir=tmp_path, sms_sender="Intrum"))


def test_unsupported_default_locale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TILFREDS_DEFAULT_LOCALE"):
        build_runtime(Settings(data_dir=tmp_path, default_locale="de"))


def test_embedded_default_needs_no_settings(tmp_path: Path) -> None:
    rt = build_runtime(Settings(data_dir=tmp_path))
    assert rt.settings.is_embedded and rt.db.dialect == "sqlite"
    assert (tmp_path / "secret.key").exists()
