"""Per key: is it registered, is it configured, what is still sealed with it, can it be dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.crypto import Keys
from tilfreds.keyring import EncryptionKey
from tilfreds.rotation.sealed import SEALED, SUPPRESSIONS, VERIFIED, held

_RESEALABLE = frozenset(s.table for s in SEALED if s.resealable)


@dataclass(frozen=True)
class KeyStatus:
    key_id: str
    configured: str  # "current", "previous" or "missing"
    registered: EncryptionKey | None
    advice: str
    held: dict[str, int] = field(default_factory=dict)  # table -> rows sealed with it


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _advice(configured: str, held: dict[str, int], *, registered: bool, startable: bool) -> str:
    movable = sum(n for table, n in held.items() if table in _RESEALABLE)
    orphans = held.get(SUPPRESSIONS, 0)
    verified = sum(held.get(table, 0) for table, _column in VERIFIED)
    if configured == "current":
        return _current(registered=registered, startable=startable)
    if configured == "missing":
        return _missing(movable, orphans, verified)
    if movable:
        return f"still needed for {_count(movable, 'row')}: run `tilfreds keys rotate`"
    notes = ["can be dropped from TILFREDS_PREVIOUS_SECRET_KEYS"]
    if orphans:
        notes.append(
            f"but the objections of numbers no longer held ({orphans}) stay under it and stop "
            "matching once it is dropped: keep it to keep them"
        )
    if verified:
        notes.append(f"audit entries verified with it ({verified}): keep a copy to verify them")
    return "; ".join(notes)


def _current(*, registered: bool, startable: bool) -> str:
    if registered:
        return "seals everything new"
    if startable:
        return "not registered yet: the next start registers it"
    return "NOT REGISTERED: this database was sealed with another key; tilfreds will not start"


def _missing(movable: int, orphans: int, verified: int) -> str:
    if movable:
        return f"NOT CONFIGURED: {_count(movable, 'row')} cannot be read"
    if orphans:
        return f"not configured: the objections under it ({orphans}) no longer match"
    return "needed to verify old audit entries" if verified else "nothing needs it"


def status(session: Session, keys: Keys) -> list[KeyStatus]:
    """Every key the database knows, is configured, or finds in stored values; current first."""
    registered = {row.key_id: row for row in session.execute(select(EncryptionKey)).scalars()}
    found = held(session)
    previous = {key.id for key in keys.previous}
    startable = not registered or any(
        (row := registered.get(key.id)) is not None and row.fingerprint == key.fingerprint
        for key in keys.previous
    )
    ids = [keys.current_id, *sorted((set(registered) | previous | set(found)) - {keys.current_id})]
    report = []
    for key_id in ids:
        configured = (
            "current"
            if key_id == keys.current_id
            else "previous"
            if key_id in previous
            else "missing"
        )
        row = registered.get(key_id)
        known = row is not None and (
            key_id != keys.current_id or row.fingerprint == keys.current.fingerprint
        )
        report.append(
            KeyStatus(
                key_id=key_id,
                configured=configured,
                registered=row,
                advice=_advice(
                    configured, found.get(key_id, {}), registered=known, startable=startable
                ),
                held=found.get(key_id, {}),
            )
        )
    return report
