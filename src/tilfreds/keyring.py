"""Where the master keys come from: settings, or on the embedded default a generated key file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tilfreds.crypto import KeyMaterial, Keys, decode_master_key, generate_master_key
from tilfreds.errors import ConfigurationError

log = logging.getLogger(__name__)
KEY_FILE_NAME = "secret.key"


def load_keys(
    secret_key: str, *, previous_keys: str = "", data_dir: Path, allow_generate: bool
) -> Keys:
    """Keys from the configured master key, or from (a new) key file where that is allowed;
    ``previous_keys`` (comma-separated) still open and find what they stored."""
    previous = [
        KeyMaterial.from_master(decode_master_key(part, source="TILFREDS_PREVIOUS_SECRET_KEYS"))
        for part in previous_keys.split(",")
        if part.strip()
    ]
    if secret_key:
        master = decode_master_key(secret_key, source="TILFREDS_SECRET_KEY")
        return Keys(KeyMaterial.from_master(master), previous)
    if not allow_generate:
        raise ConfigurationError(
            "TILFREDS_SECRET_KEY is required outside the embedded setup; "
            "create one with `tilfreds keys generate` and keep it in your secret store"
        )
    path = data_dir / KEY_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # an earlier run (or a sibling process) made it
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_master_key())
        log.warning(
            "generated a development key at %s: fine for trying tilfreds, but set "
            "TILFREDS_SECRET_KEY for real data (losing this file makes stored numbers unreadable)",
            path,
        )
    master = decode_master_key(path.read_text(), source=f"the key file {path}")
    return Keys(KeyMaterial.from_master(master), previous)
