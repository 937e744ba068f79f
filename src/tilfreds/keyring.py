"""Where the master keys come from (settings, or on the embedded default a generated key file), and
the register of the keys a database was sealed with: a lost or changed key refuses to start instead
of quietly sealing with a new one, under which stored objections no longer match (P7)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import String, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from tilfreds.crypto import KeyMaterial, Keys, decode_master_key, generate_master_key
from tilfreds.db import Base, Database
from tilfreds.errors import ConfigurationError

log = logging.getLogger(__name__)
KEY_FILE_NAME = "secret.key"
_ROTATE_HINT = (
    "to move to a new key, set the old one in TILFREDS_PREVIOUS_SECRET_KEYS next to it "
    "(docs/operating.md, Keys)"
)


class EncryptionKey(Base):
    """A master key this database has seen, known by its fingerprint (never the key itself)."""

    __tablename__ = "encryption_keys"

    key_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]  # when a newer key became the current one


def key_source(secret_key: str, data_dir: Path) -> str:
    """Where the current key comes from, as an operator would look for it."""
    return "TILFREDS_SECRET_KEY" if secret_key else f"the key file {data_dir / KEY_FILE_NAME}"


def load_keys(
    secret_key: str,
    *,
    previous_keys: str = "",
    data_dir: Path,
    allow_generate: bool,
    database: Database | None = None,
) -> Keys:
    """Keys from the configured master key, or from (a new) key file where that is allowed;
    ``previous_keys`` (comma-separated) still open and find what they stored. A new key file is
    made only if ``database`` has no registered keys: otherwise the old file was lost."""
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
    if not os.path.lexists(path):
        known = registered_ids(database) if database is not None else []
        if known:
            raise ConfigurationError(
                f"the key file {path} is missing, but this database was sealed with key "
                f"{', '.join(known)}: restore the key file from your backup. A new key could "
                "read nothing stored, and recorded objections would stop matching"
            )
        _create_key_file(path)
    return Keys(KeyMaterial.from_master(_read_key_file(path)), previous)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # a sibling process made it a moment ago
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_master_key())
    log.warning(
        "generated a development key at %s: fine for trying tilfreds, but set "
        "TILFREDS_SECRET_KEY for real data (losing this file makes stored numbers unreadable)",
        path,
    )


def _read_key_file(path: Path) -> bytes:
    source = f"the key file {path}"
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{source} cannot be read: {exc.strerror}") from exc
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError as exc:  # e.g. raw key bytes instead of their base64
        raise ConfigurationError(
            f"{source} is not a valid key: it must hold the base64 text that "
            "`tilfreds keys generate` prints"
        ) from exc
    return decode_master_key(text, source=source)


def registered_ids(database: Database) -> list[str]:
    """Ids of the keys the database knows; none for a new database or one not yet migrated."""
    if not inspect(database.engine).has_table(EncryptionKey.__tablename__):
        return []
    with database.read_only() as session:
        return list(session.execute(select(EncryptionKey.key_id)).scalars())


def check_keys(
    session: Session,
    keys: Keys,
    *,
    source: str,
    now: datetime,
    in_use: Callable[[Session], set[str]],
) -> list[str]:
    """Refuse a current key this database was not sealed with, naming ``source``; register the
    keys on the first start, and a new current key when a known one is configured as previous
    (a rotation starts). Returns the ids registered now. ``in_use`` gives the key ids of stored
    values: asked only on the first start, to catch a key changed before keys were registered."""
    known = {row.key_id: row for row in session.execute(select(EncryptionKey)).scalars()}

    def is_known(key: KeyMaterial) -> bool:
        row = known.get(key.id)
        return row is not None and row.fingerprint == key.fingerprint

    if not known:
        strangers = sorted(in_use(session) - {key.id for key in keys.all})
        if strangers:
            raise ConfigurationError(
                f"this database holds values sealed with key {', '.join(strangers)}, which is "
                f"neither the key in {source} (id {keys.current_id}) nor a previous key: "
                f"restore that key from your backup, or {_ROTATE_HINT}"
            )
        for key in keys.previous:
            session.add(_row(key, now=now, retired=True))
        session.add(_row(keys.current, now=now, retired=False))
        return [key.id for key in keys.all]
    if is_known(keys.current):
        return []
    if not any(is_known(key) for key in keys.previous):
        raise ConfigurationError(
            f"the key in {source} (id {keys.current_id}) is not a key this database was sealed "
            f"with (it knows {', '.join(sorted(known))}). Starting would seal new values with it "
            "and find nothing stored, recorded objections included. If the key was lost or "
            f"changed by mistake, restore it from your backup; {_ROTATE_HINT}"
        )
    if keys.current_id in known:  # same id, another key: 1 in 4 billion, but never overwrite
        raise ConfigurationError(
            f"the key in {source} shares its id with another registered key: generate another"
        )
    for row in known.values():
        if row.retired_at is None:
            row.retired_at = now
    session.add(_row(keys.current, now=now, retired=False))
    return [keys.current_id]


def _row(key: KeyMaterial, *, now: datetime, retired: bool) -> EncryptionKey:
    return EncryptionKey(
        key_id=key.id,
        fingerprint=key.fingerprint,
        created_at=now,
        retired_at=now if retired else None,
    )


def verify_at_start(
    database: Database,
    keys: Keys,
    *,
    source: str,
    now: datetime,
    in_use: Callable[[Session], set[str]],
) -> list[str]:
    """``check_keys`` in its own transaction, for entrypoints. Processes starting together may
    both register the same key: the loser of that race checks again and finds it."""
    try:
        with database.unit_of_work() as session:
            return check_keys(session, keys, source=source, now=now, in_use=in_use)
    except IntegrityError:
        pass  # a sibling process registered the same key first
    with database.unit_of_work() as session:
        return check_keys(session, keys, source=source, now=now, in_use=in_use)
