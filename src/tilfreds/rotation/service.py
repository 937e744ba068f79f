"""Key rotation: move every value sealed with a previous key (ciphertexts, blind indexes) to the
current key, in short batches while the system keeps serving.

Objections (P7) keep matching throughout: a suppression is only a blind index (the number is not
stored), so it moves when a row holding its number is re-indexed, in the same transaction. Those
whose number is held nowhere stay under their key, found as long as it is configured as previous.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import (
    RowMapping,
    bindparam,
    delete,
    func,
    not_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, UndecryptableError, context
from tilfreds.db import Database
from tilfreds.errors import TilfredsError
from tilfreds.rotation.sealed import SEALED, SUPPRESSIONS, Sealed, stale, table

BATCH_SIZE = 500
_ATTEMPTS = 5  # a batch that lost a race with a concurrent writer is simply done again


CARRY = "objections"  # the last pass: objections of numbers already held under the current key


class RotationFailed(TilfredsError):
    code, http_status = "rotation_failed", 409


@dataclass(frozen=True)
class Step:
    """One committed batch: which pass, the rows it went through, how many of them it moved, how
    many no configured key opens, and how many objections moved along."""

    task: str
    rows: int
    moved: int
    unreadable: int = 0
    objections: int = 0


def plan(session: Session, keys: Keys) -> dict[str, int]:
    """Rows each pass of ``rotate`` will go through (a concurrent writer may add a few)."""
    work = {
        s.table: session.execute(
            select(func.count()).select_from(table(s.table)).where(stale(s, keys.current_id))
        ).scalar_one()
        for s in SEALED
        if s.resealable
    }
    if keys.previous and _old_suppressions(session, keys):
        work[CARRY] = sum(
            session.execute(select(func.count()).select_from(table(s.table))).scalar_one()
            for s in SEALED
            if s.holds_numbers
        )
    return work


def _old_suppressions(session: Session, keys: Keys) -> int:
    t = table(SUPPRESSIONS)
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
                moved.update(
                    name
                    for name, n in ((sealed.table, step.moved), (SUPPRESSIONS, step.objections))
                    if n
                )
                yield step
    with db.read_only() as session:
        carry = bool(keys.previous) and _old_suppressions(session, keys) > 0
    for sealed in SEALED if carry else ():
        if sealed.holds_numbers:
            for step in _passes(db, keys, sealed, _carry_batch, batch_size):
                if step.objections:
                    moved.add(SUPPRESSIONS)
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
    t = table(sealed.table)
    rows = (
        session.execute(
            select(t)
            .where(t.c.id > after, stale(sealed, keys.current_id))
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
    objections = _move_suppressions(session, reindexed) if sealed.holds_numbers else 0
    return rows[-1]["id"], Step(sealed.table, len(rows), len(updates), unreadable, objections)


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
    t = table(sealed.table)
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
        try:
            number = keys.decrypt(cipher, context=context(sealed.table, field, row_name))
        except UndecryptableError:
            continue  # altered: it holds no number we could know
        old_to_new.update(dict.fromkeys(keys.blind_indexes(number)[1:], index))
    moved = _move_suppressions(session, old_to_new)
    return rows[-1][0], Step(CARRY, len(rows), moved, objections=moved)


def _move_suppressions(session: Session, old_to_new: Mapping[str, str]) -> int:
    """Re-index suppressions from old to new blind indexes; where the new one already exists
    (a second objection under the new key) the old one goes. Returns how many moved."""
    if not old_to_new:
        return 0
    t = table(SUPPRESSIONS)
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
