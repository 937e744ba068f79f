"""Every column holding a value sealed with a key, declared once, and what each key holds.

Rotation sits high (like privacy/): it touches every table with sealed values. Adding a sealed
column is a line in ``SEALED``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, func, literal_column, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tilfreds.tables import metadata


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


SUPPRESSIONS = "suppressions"
SEALED = (
    Sealed(
        "people",
        index="phone_index",
        ciphers=(("phone_cipher", "phone"), ("name_cipher", "name")),
        row="phone_index",
        indexed_value="phone_cipher",
        holds_numbers=True,
    ),
    Sealed(SUPPRESSIONS, index="phone_index"),  # the number itself is never stored (P7)
    Sealed(
        "dev_phone_messages",
        index="phone_index",
        ciphers=(("phone_cipher", "phone"), ("body_cipher", "body")),
        row="phone_index",
        indexed_value="phone_cipher",
        holds_numbers=True,
    ),
    # a number we hold no person for, and a text that cannot be rendered again (a code)
    Sealed("messages", ciphers=(("to_cipher", "to"), ("body_cipher", "body"))),
)
# Values verified (never re-sealed) with the key they name: it is needed as long as they are kept.
VERIFIED = (("audit_log", "key_id"),)


def table(name: str) -> Table:
    return metadata.tables[name]


# positions as literals, not bound parameters: PostgreSQL must see GROUP BY and SELECT agree
def key_of_index(column: ColumnElement[str]) -> ColumnElement[str]:
    return func.substr(column, literal_column("1"), literal_column("8"))


def key_of_cipher(column: ColumnElement[bytes]) -> ColumnElement[bytes]:
    # after the version byte: the key id, 4 bytes
    return func.substr(column, literal_column("2"), literal_column("4"))


def stale(sealed: Sealed, current_id: str) -> ColumnElement[bool]:
    """Rows with any value sealed with a key other than the current one."""
    t = table(sealed.table)
    conditions: list[ColumnElement[bool]] = [
        key_of_cipher(t.c[column]) != bytes.fromhex(current_id) for column, _ in sealed.ciphers
    ]
    if sealed.index is not None:
        conditions.append(not_(t.c[sealed.index].startswith(f"{current_id}.")))
    return or_(*conditions)


def held(session: Session) -> dict[str, dict[str, int]]:
    """Per key id, per table: rows holding values sealed with (or verified by) that key."""
    found: dict[str, dict[str, int]] = {}

    def count(name: str, key: ColumnElement[str] | ColumnElement[bytes], column: str) -> None:
        query = select(key, func.count()).where(table(name).c[column].is_not(None)).group_by(key)
        for key_id, n in session.execute(query).all():
            name_of_key = key_id.hex() if isinstance(key_id, bytes) else str(key_id)
            per_table = found.setdefault(name_of_key, {})
            per_table[name] = max(per_table.get(name, 0), n)  # a row's values move together

    for sealed in SEALED:
        t = table(sealed.table)
        if sealed.index is not None:
            count(sealed.table, key_of_index(t.c[sealed.index]), sealed.index)
        for column, _name in sealed.ciphers:
            count(sealed.table, key_of_cipher(t.c[column]), column)
    for name, column in VERIFIED:
        if column in table(name).c:  # only once the audit chain names its key per entry
            count(name, table(name).c[column], column)
    return found


def key_ids_in_use(session: Session) -> set[str]:
    """Ids of every key some stored value was sealed with."""
    return set(held(session))
