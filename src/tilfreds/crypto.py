"""Field encryption (AES-GCM) and keyed hashing (HMAC-SHA256 blind index) of personal values.

Phone numbers are stored as a keyed hash (to find a person) plus a ciphertext (to send to them),
never in clear. Every key derives from one master key; each ciphertext and blind index names the
key it was made with, so a master key can be rotated (``tilfreds keys rotate``) while the old one
is still configured as a previous key. Each ciphertext is bound to where it is stored (table,
column and the row's identity) as associated data: copied to another row, it does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tilfreds.errors import ConfigurationError

MASTER_KEY_BYTES = 32
_NONCE = 12
_VERSION = b"\x02"  # version byte, then the 4-byte key id, the nonce, the sealed text
_KEY_ID_BYTES = 4
_HEADER = 1 + _KEY_ID_BYTES + _NONCE


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def context(table: str, column: str, row: object) -> str:
    """Where a ciphertext is stored: the associated data it is sealed to."""
    return f"{table}.{column}/{row}"


class UndecryptableError(ValueError):
    """A ciphertext that cannot be opened: unknown key, wrong place, or altered."""


@dataclass(frozen=True)
class KeyMaterial:
    """The keys derived from one master key, and the id that names them in stored values."""

    id: str  # 8 hex digits, stored in every ciphertext and blind index
    fingerprint: str  # 64 hex digits, stored in the database to recognise the key at start-up
    encryption: bytes
    index: bytes
    audit: bytes

    @classmethod
    def from_master(cls, master: bytes) -> KeyMaterial:
        if len(master) < MASTER_KEY_BYTES:
            raise ConfigurationError(
                f"a master key must decode to at least {MASTER_KEY_BYTES} bytes"
            )
        fingerprint = _derive(master, b"tilfreds key fingerprint v2").hex()
        return cls(
            id=fingerprint[: 2 * _KEY_ID_BYTES],
            fingerprint=fingerprint,
            encryption=_derive(master, b"tilfreds field encryption v2"),
            index=_derive(master, b"tilfreds blind index v2"),
            audit=_derive(master, b"tilfreds audit chain v2"),
        )


class Keys:
    """The current key, which seals everything new, and previous keys, which still open and find
    what was stored with them until ``tilfreds keys rotate`` has moved it to the current key."""

    def __init__(self, current: KeyMaterial, previous: Sequence[KeyMaterial] = ()) -> None:
        self.current = current
        self.previous = tuple(k for k in previous if k.id != current.id)
        self.all = (current, *self.previous)
        self._by_id = {k.id: k for k in self.all}
        # made once per key: the key setup is half of a seal, and most of an open
        self._openers = {k.id: AESGCM(k.encryption) for k in self.all}
        self._sealer = self._openers[current.id]

    @classmethod
    def from_master(cls, master: bytes, previous: Sequence[bytes] = ()) -> Keys:
        return cls(KeyMaterial.from_master(master), [KeyMaterial.from_master(p) for p in previous])

    @property
    def current_id(self) -> str:
        return self.current.id

    def material(self, key_id: str) -> KeyMaterial | None:
        return self._by_id.get(key_id)

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        key = self.current
        nonce = os.urandom(_NONCE)
        sealed = self._sealer.encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + bytes.fromhex(key.id) + nonce + sealed

    def decrypt(self, token: bytes, *, context: str) -> str:
        key_id = key_id_of(token)
        opener = self._openers.get(key_id)
        if opener is None:
            raise UndecryptableError(f"sealed with key {key_id}, which is not configured")
        nonce, body = token[1 + _KEY_ID_BYTES : _HEADER], token[_HEADER:]
        try:
            return opener.decrypt(nonce, body, context.encode()).decode()
        except InvalidTag as exc:
            raise UndecryptableError("altered, or not stored where it was sealed") from exc

    def blind_index(self, value: str) -> str:
        """A keyed hash for equality look-ups under the current key. Not anonymisation: the input
        space of phone numbers is small enough to search, so the key must stay secret."""
        return _index(self.current, value)

    def blind_indexes(self, value: str) -> list[str]:
        """The value's blind index under every configured key, current first: what a look-up
        must match while a rotation is under way."""
        return [_index(k, value) for k in self.all]


def _index(key: KeyMaterial, value: str) -> str:
    return f"{key.id}.{hmac.new(key.index, value.encode(), hashlib.sha256).hexdigest()}"


def key_id_of(token: bytes) -> str:
    if len(token) <= _HEADER or token[:1] != _VERSION:
        raise UndecryptableError("not a tilfreds ciphertext")
    return token[1 : 1 + _KEY_ID_BYTES].hex()


def index_key_id(index: str) -> str:
    """The id of the key a stored blind index was made with."""
    return index.split(".", 1)[0]


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode()


def decode_master_key(text: str, *, source: str) -> bytes:
    """The master key in ``text`` (base64), or a ConfigurationError naming ``source``."""
    try:
        master = base64.urlsafe_b64decode(text.strip().encode())
    except (ValueError, binascii.Error) as exc:
        raise ConfigurationError(f"{source} is not a valid key: it is not base64") from exc
    if len(master) < MASTER_KEY_BYTES:
        raise ConfigurationError(
            f"{source} is not a valid key: it must decode to {MASTER_KEY_BYTES} bytes; "
            "create one with `tilfreds keys generate`"
        )
    return master
