"""Key rotation: move every value sealed with a previous key (ciphertexts, blind indexes) to the
current key, in short batches while the system keeps serving; and per key, what still needs it.

Objections (P7) keep matching throughout: a suppression is only a blind index (the number is not
stored), so it moves when a row holding its number is re-indexed, in the same transaction. Those
whose number is held nowhere stay under their key, found as long as it is configured as previous.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import (
    RowMapping,
    Table,
    bindparam,
    delete,
    func,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, UndecryptableError, context
from tilfreds.db import Database
from tilfreds.errors import TilfredsError
from tilfreds.keyring import EncryptionKey
from tilfreds.tables import metadata

BATCH_SIZE = 500
_ATTEMPTS = 5  # a batch that lost a race with a concurrent writer is simply done again


@dataclass(frozen=True)
class Sealed:
    """A table holding sealed values: its blind index column, if any; its ciphertext columns,
    each with the field name its context gives; the column naming the row in those contexts; and
    the ciphertext column holding the value the index is of (None: it cannot be re-indexed)."""

    table: str
    index: str | None = None
    ciphers: tuple[tuple[str, str], ...] = ()
    row: str = "id"
    indexed_value: str | None = None
    holds_numbers: bool = False  # its index is a phone number's: objections follow it

    @property
    def resealable(self) -> bool:
        return bool(self.ciphers) and (self.index is None or self.indexed_value is not None)


# Every sealed column of the schema. A new one is a line here (and in privacy/datamap.py).
SEALED = (
    Sealed(
        "people",
        index="phone_index",
        ciphers=(("phone_cipher", "phone"), ("name_cipher", "name")),
        row="phone_index",
        indexed_value="phone_cipher",
        holds_numbers=True,
    ),
    Sealed("suppressions", index="phone_index"),  # the number itself is never stored
    Sealed(
        "dev_phone_messages",
        index="phone_index",
        ciphers=(("phone_cipher", "phone"),),
        row="phone_index",
        indexed_value="phone_cipher",
        holds_numbers=True,
    ),
)
_SUPPRESSIONS = "suppressions"
CARRY = "objections"  # the last pass: objections of numbers already held under the current key


class RotationFailed(TilfredsError):
    code, http_status = "rotation_failed", 409


@dataclass(frozen=True)
class Step:
    """One committed batch: which pass, the rows it went through, how many of them it moved and
    how many no configured key opens."""

    task: str
    rows: int
    moved: int
    unreadable: int = 0


def _t(name: str) -> Table:
    return metadata.tables[name]


# positions as literals, not bound parameters: PostgreSQL must see GROUP BY and SELECT agree
def _key_of_index(column: ColumnElement[str]) -> ColumnElement[str]:
    return func.substr(column, literal_column("1"), literal_column("8"))


def _key_of_cipher(column: ColumnElement[bytes]) -> ColumnElement[bytes]:
    # after the version byte: the key id, 4 bytes
    return func.substr(column, literal_column("2"), literal_column("4"))


def _stale(sealed: Sealed, current_id: str) -> ColumnElement[bool]:
    """Rows with any value sealed with a key other than the current one."""
    t = _t(sealed.table)
    conditions: list[ColumnElement[bool]] = [
        _key_of_cipher(t.c[column]) != bytes.fromhex(current_id) for column, _ in sealed.ciphers
    ]
    if sealed.index is not None:
        conditions.append(not_(t.c[sealed.index].startswith(f"{current_id}.")))
    return or_(*conditions)


def plan(session: Session, keys: Keys) -> dict[str, int]:
    """Rows each pass of ``rotate`` will go through (a concurrent writer may add a few)."""
    work = {
        s.table: session.execute(
            select(func.count()).select_from(_t(s.table)).where(_stale(s, keys.current_id))
        ).scalar_one()
        for s in SEALED
        if s.resealable
    }
    if keys.previous and _old_suppressions(session, keys):
        work[CARRY] = sum(
            session.execute(select(func.count()).select_from(_t(s.table))).scalar_one()
            for s in SEALED
            if s.holds_numbers
        )
    return work


def _old_suppressions(session: Session, keys: Keys) -> int:
    t = _t(_SUPPRESSIONS)
    return session.execute(
        select(func.count())
        .select_from(t)
        .where(not_(t.c.phone_index.startswith(f"{keys.current_id}.")))
    ).scalar_one()


def rotate(
    db: Database, keys: Keys, *, actor: str, now: datetime, batch_size: int = BATCH_SIZE
) -> Iterator[Step]:
    """Move everything sealed with a previous key to the current key, one short transaction per
    batch (rows locked in id order), yielding after each commit. Rows no configured key opens
    are left as they are and counted. Safe to run again, and to stop at any point."""
    moved: set[str] = set()
    for sealed in SEALED:
        if sealed.resealable:
            for step in _passes(db, keys, sealed, _reseal_batch, batch_size):
                if step.moved:
                    moved.add(sealed.table)
                yield step
    with db.read_only() as session:
        carry = bool(keys.previous) and _old_suppressions(session, keys) > 0
    for sealed in SEALED if carry else ():
        if sealed.holds_numbers:
            for step in _passes(db, keys, sealed, _carry_batch, batch_size):
                if step.moved:
                    moved.add(_SUPPRESSIONS)
                yield step
    if moved:
        with db.unit_of_work() as session:
            audit.record(
                session,
                actor=actor,
                action="keys.rotated",
                subject_type="encryption_key",
                subject_id=keys.current_id,
                at=now,
                fields=sorted(moved),
            )


class _Batch(Protocol):
    def __call__(
        self, session: Session, keys: Keys, sealed: Sealed, *, after: int, limit: int
    ) -> tuple[int, Step] | None: ...


def _passes(
    db: Database, keys: Keys, sealed: Sealed, batch: _Batch, batch_size: int
) -> Iterator[Step]:
    after = 0
    while True:
        for attempt in range(_ATTEMPTS):
            try:
                with db.unit_of_work() as session:
                    done = batch(session, keys, sealed, after=after, limit=batch_size)
                break
            except (IntegrityError, OperationalError) as exc:  # lost a race (or a deadlock)
                if attempt == _ATTEMPTS - 1:
                    raise RotationFailed(
                        f"a batch of {sealed.table} after row {after} failed "
                        f"{_ATTEMPTS} times: {exc.orig}"
                    ) from exc
        if done is None:
            return
        after, step = done
        yield step


def _reseal_batch(
    session: Session, keys: Keys, sealed: Sealed, *, after: int, limit: int
) -> tuple[int, Step] | None:
    """Re-seal the next ``limit`` stale rows after id ``after``; their objections follow."""
    t = _t(sealed.table)
    rows = (
        session.execute(
            select(t)
            .where(t.c.id > after, _stale(sealed, keys.current_id))
            .order_by(t.c.id)
            .limit(limit)
            .with_for_update()
        )
        .mappings()
        .all()
    )
    if not rows:
        return None
    updates: list[dict[str, object]] = []
    reindexed: dict[str, str] = {}
    unreadable = 0
    for row in rows:
        try:
            values = _resealed(keys, sealed, row)
        except UndecryptableError:
            unreadable += 1
            continue
        updates.append({"b_id": row["id"], **{f"b_{k}": v for k, v in values.items()}})
        if sealed.index is not None and row[sealed.index] != values[sealed.index]:
            reindexed[row[sealed.index]] = str(values[sealed.index])
    if updates:
        columns = [k.removeprefix("b_") for k in updates[0] if k != "b_id"]
        session.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in columns}),
            updates,
        )
    if sealed.holds_numbers:
        _move_suppressions(session, reindexed)
    return rows[-1]["id"], Step(sealed.table, len(rows), len(updates), unreadable)


def _resealed(keys: Keys, sealed: Sealed, row: RowMapping) -> dict[str, object]:
    """The row's sealed values under the current key; a context naming the row by its blind
    index names it by the new index."""
    old_row = row[sealed.row]
    clear = {
        column: keys.decrypt(value, context=context(sealed.table, name, old_row))
        for column, name in sealed.ciphers
        if isinstance(value := row[column], bytes)
    }
    values: dict[str, object] = {}
    if sealed.index is not None and sealed.indexed_value is not None:
        values[sealed.index] = keys.blind_index(clear[sealed.indexed_value])
    new_row = values.get(sealed.row, old_row)
    for column, name in sealed.ciphers:
        plain = clear.get(column)
        values[column] = (
            None
            if plain is None
            else keys.encrypt(plain, context=context(sealed.table, name, new_row))
        )
    return values


def _carry_batch(
    session: Session, keys: Keys, sealed: Sealed, *, after: int, limit: int
) -> tuple[int, Step] | None:
    """Move objections recorded under a previous key for numbers these rows hold under the
    current key (a number that objected, was not held, and came back during the rotation)."""
    t = _t(sealed.table)
    assert sealed.index is not None and sealed.indexed_value is not None
    rows = session.execute(
        select(t.c.id, t.c[sealed.index], t.c[sealed.indexed_value], t.c[sealed.row])
        .where(t.c.id > after)
        .order_by(t.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return None
    prefix, field = f"{keys.current_id}.", dict(sealed.ciphers)[sealed.indexed_value]
    old_to_new: dict[str, str] = {}
    for _id, index, cipher, row_name in rows:
        if not index.startswith(prefix):
            continue  # one no configured key opens, counted by the re-seal pass
        number = keys.decrypt(cipher, context=context(sealed.table, field, row_name))
        old_to_new.update(dict.fromkeys(keys.blind_indexes(number)[1:], index))
    return rows[-1][0], Step(CARRY, len(rows), _move_suppressions(session, old_to_new))


def _move_suppressions(session: Session, old_to_new: Mapping[str, str]) -> int:
    """Re-index suppressions from old to new blind indexes; where the new one already exists
    (a second objection under the new key) the old one goes. Returns how many moved."""
    if not old_to_new:
        return 0
    t = _t(_SUPPRESSIONS)
    found = session.execute(
        select(t.c.id, t.c.phone_index).where(
            t.c.phone_index.in_([*old_to_new, *old_to_new.values()])
        )
    ).all()
    present = {index for _id, index in found}
    moved = 0
    for row_id, index in sorted(found):
        new = old_to_new.get(index)
        if new is None:
            continue
        if new in present:
            session.execute(delete(t).where(t.c.id == row_id))
        else:
            session.execute(update(t).where(t.c.id == row_id).values(phone_index=new))
            present.add(new)
        moved += 1
    return moved


# Values verified, never re-sealed, with the key they name: needed as long as they are kept.
_VERIFIED = (("audit_log", "key_id"),)


def _held(session: Session) -> dict[str, dict[str, int]]:
    """Per key id, per table: rows holding values sealed with (or verified by) that key."""
    held: dict[str, dict[str, int]] = {}

    def count(table: str, key: ColumnElement[str] | ColumnElement[bytes], column: str) -> None:
        t = _t(table)
        query = select(key, func.count()).where(t.c[column].is_not(None)).group_by(key)
        for key_id, n in session.execute(query).all():
            name = key_id.hex() if isinstance(key_id, bytes) else str(key_id)
            per_table = held.setdefault(name, {})
            per_table[table] = max(per_table.get(table, 0), n)  # a row's values move together

    for sealed in SEALED:
        t = _t(sealed.table)
        if sealed.index is not None:
            count(sealed.table, _key_of_index(t.c[sealed.index]), sealed.index)
        for column, _field in sealed.ciphers:
            count(sealed.table, _key_of_cipher(t.c[column]), column)
    for table, column in _VERIFIED:
        if column in _t(table).c:
            count(table, _t(table).c[column], column)
    return held


def key_ids_in_use(session: Session) -> set[str]:
    """Ids of every key some stored value was sealed with."""
    return set(_held(session))


@dataclass(frozen=True)
class KeyStatus:
    key_id: str
    configured: str  # "current", "previous" or "missing"
    registered: EncryptionKey | None
    held: dict[str, int] = field(default_factory=dict)

    @property
    def needs_rotation(self) -> int:
        """Values a rotation would move to the current key."""
        resealable = {s.table for s in SEALED if s.resealable}
        return sum(n for table, n in self.held.items() if table in resealable)

    @property
    def advice(self) -> str:
        orphans = self.held.get(_SUPPRESSIONS, 0)
        verified = sum(self.held.get(table, 0) for table, _column in _VERIFIED)
        if self.configured == "current":
            return "seals everything new"
        if self.configured == "missing":
            if self.needs_rotation:
                return f"NOT CONFIGURED: {self.needs_rotation} rows cannot be read"
            if orphans:
                return f"not configured: {orphans} objections under it no longer match"
            return "nothing needs it" if not verified else "needed to verify old audit entries"
        if self.needs_rotation:
            return "still needed: run `tilfreds keys rotate`"
        notes = ["can be dropped from TILFREDS_PREVIOUS_SECRET_KEYS"]
        if orphans:
            notes.append(
                f"{orphans} objections from numbers no longer held stay under it and stop "
                "matching once it is dropped: keep it to keep them"
            )
        if verified:
            notes.append(f"{verified} audit entries are verified with it: keep a copy for that")
        return "; ".join(notes)


def status(session: Session, keys: Keys) -> list[KeyStatus]:
    """Every key the database knows, is configured, or finds in stored values; current first."""
    registered = {row.key_id: row for row in session.execute(select(EncryptionKey)).scalars()}
    held = _held(session)
    previous = {key.id for key in keys.previous}
    ids = [keys.current_id, *sorted((set(registered) | previous | set(held)) - {keys.current_id})]
    return [
        KeyStatus(
            key_id=key_id,
            configured=(
                "current"
                if key_id == keys.current_id
                else "previous"
                if key_id in previous
                else "missing"
            ),
            registered=registered.get(key_id),
            held=held.get(key_id, {}),
        )
        for key_id in ids
    ]
