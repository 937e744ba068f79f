"""Field encryption (AES-GCM) and keyed hashing (HMAC-SHA256 blind index) of personal values.

Phone numbers are stored as a keyed hash (to find a person) plus a ciphertext (to send to them),
never in clear. Both keys derive from one master key in settings; on the embedded default a key
file is generated on first run, with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tilfreds.errors import ConfigurationError

log = logging.getLogger(__name__)
KEY_FILE_NAME = "secret.key"
_NONCE = 12
_VERSION = b"\x01"


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


@dataclass(frozen=True)
class Keys:
    """The derived keys. Build with ``Keys.from_master`` or ``load_keys``."""

    encryption: bytes
    index: bytes

    @classmethod
    def from_master(cls, master: bytes) -> Keys:
        if len(master) < 32:
            raise ConfigurationError("TILFREDS_SECRET_KEY must decode to at least 32 bytes")
        return cls(
            encryption=_derive(master, b"tilfreds field encryption v1"),
            index=_derive(master, b"tilfreds blind index v1"),
        )

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + AESGCM(self.encryption).encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, token: bytes) -> str:
        if token[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        nonce, body = token[1 : 1 + _NONCE], token[1 + _NONCE :]
        return AESGCM(self.encryption).decrypt(nonce, body, None).decode()

    def blind_index(self, value: str) -> str:
        """A keyed hash for equality look-ups. Not anonymisation: the input space is small."""
        return hmac.new(self.index, value.encode(), hashlib.sha256).hexdigest()


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_keys(secret_key: str, *, data_dir: Path, allow_generate: bool) -> Keys:
    """Keys from the configured master key, or from (a new) key file where that is allowed."""
    if secret_key:
        try:
            master = base64.urlsafe_b64decode(secret_key.encode())
        except ValueError as exc:
            raise ConfigurationError("TILFREDS_SECRET_KEY is not valid base64") from exc
        return Keys.from_master(master)
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
    return Keys.from_master(base64.urlsafe_b64decode(path.read_text().strip().encode()))
