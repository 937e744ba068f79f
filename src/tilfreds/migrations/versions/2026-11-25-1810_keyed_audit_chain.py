"""Key the audit chain: each entry's MAC is HMAC-SHA256 under an audit key derived from the master
key, and names that key; index entries by subject.

An existing (plain SHA-256) chain is checked and then sealed again with the current key, so this
step needs the keys: ``tilfreds db upgrade`` passes them; a bare ``alembic upgrade`` can only
migrate an empty log. The formats below are frozen copies: later code may change, these may not.

Revision ID: 5a7d3c2b9e14
Revises: 3c9a1f0e7b21
Create Date: 2026-11-25 18:10:00
"""

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

import tilfreds.db

revision: str = "5a7d3c2b9e14"
down_revision: str | None = "3c9a1f0e7b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
_KEYS = "tilfreds.keys"  # where the Database's session info carries the Keys


def _table(prev: str, this: str, *, key_id: bool) -> sa.TableClause:
    names = ["seq", "actor", "action", "subject_type", "subject_id", prev, this]
    columns: list[sa.ColumnClause[Any]] = [
        sa.column("id", sa.Integer()),
        sa.column("at", tilfreds.db.UTCDateTime()),
        sa.column("fields", sa.JSON()),
        *(sa.column(name) for name in names),
    ]
    if key_id:
        columns.append(sa.column("key_id"))
    return sa.table("audit_log", *columns)


def _content(e: Any) -> list[Any]:
    return [e.seq, e.at.isoformat(), e.actor, e.action, e.subject_type, e.subject_id,
            sorted(e.fields)]  # fmt: skip


def _serialise(values: list[Any]) -> bytes:
    return json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode()


def _sha256(e: Any, prev: str) -> str:
    return hashlib.sha256(_serialise([*_content(e), prev])).hexdigest()


def _hmac(key: bytes, e: Any, key_id: str, prev: str) -> str:
    return hmac.new(key, _serialise([*_content(e), key_id, prev]), hashlib.sha256).hexdigest()


def _head_table(column: str) -> sa.TableClause:
    return sa.table("audit_head", sa.column("id", sa.Integer()), sa.column(column, sa.String()))


def upgrade() -> None:
    bind = op.get_bind()
    old = _table("prev_hash", "hash", key_id=False)
    entries = bind.execute(sa.select(old).order_by(old.c.seq)).all()
    sealed: list[dict[str, Any]] = []
    if entries:
        keys = (context.config.attributes.get("session_info") or {}).get(_KEYS)
        if keys is None:
            raise RuntimeError(
                "the audit log has entries to seal with the master key, which this migration "
                "was not given: run `tilfreds db upgrade`"
            )
        prev = new_prev = GENESIS
        for n, e in enumerate(entries, start=1):
            if (e.seq, e.prev_hash, e.hash) != (n, prev, _sha256(e, prev)):
                raise RuntimeError(
                    f"the audit log is broken at entry {n} (`tilfreds audit verify` of the "
                    "previous version says how); it cannot be sealed as it is"
                )
            mac = _hmac(keys.current.audit, e, keys.current.id, new_prev)
            sealed.append({"_id": e.id, "k": keys.current.id, "p": new_prev, "m": mac})
            prev, new_prev = e.hash, mac
        old_head = bind.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
        if old_head is not None and tuple(old_head) != (len(entries), prev):
            raise RuntimeError(
                f"the audit log's newest entries after {len(entries)} are missing; it cannot "
                "be sealed as it is"
            )
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.alter_column("hash", new_column_name="mac", existing_type=sa.String(64))
        batch_op.alter_column("prev_hash", new_column_name="prev_mac", existing_type=sa.String(64))
        batch_op.add_column(sa.Column("key_id", sa.String(length=8), nullable=True))
    new = _table("prev_mac", "mac", key_id=True)
    if sealed:
        bind.execute(
            new.update()
            .where(new.c.id == sa.bindparam("_id"))
            .values(key_id=sa.bindparam("k"), prev_mac=sa.bindparam("p"), mac=sa.bindparam("m")),
            sealed,
        )
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.alter_column("key_id", existing_type=sa.String(length=8), nullable=False)
        batch_op.create_index(
            "ix_audit_log_subject_type_subject_id", ["subject_type", "subject_id"], unique=False
        )
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.alter_column("hash", new_column_name="mac", existing_type=sa.String(64))
    head = _head_table("mac")
    bind.execute(head.update().values(mac=sealed[-1]["m"] if sealed else GENESIS))


def downgrade() -> None:
    """Back to plain SHA-256: anyone with database access can then rewrite the log unnoticed."""
    bind = op.get_bind()
    new = _table("prev_mac", "mac", key_id=True)
    hashed: list[dict[str, Any]] = []
    prev = GENESIS
    for e in bind.execute(sa.select(new).order_by(new.c.seq)):
        digest = _sha256(e, prev)
        hashed.append({"_id": e.id, "p": prev, "h": digest})
        prev = digest
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index("ix_audit_log_subject_type_subject_id")
        batch_op.drop_column("key_id")
        batch_op.alter_column("mac", new_column_name="hash", existing_type=sa.String(64))
        batch_op.alter_column("prev_mac", new_column_name="prev_hash", existing_type=sa.String(64))
    old = _table("prev_hash", "hash", key_id=False)
    if hashed:
        bind.execute(
            old.update()
            .where(old.c.id == sa.bindparam("_id"))
            .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")),
            hashed,
        )
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.alter_column("mac", new_column_name="hash", existing_type=sa.String(64))
    bind.execute(_head_table("hash").update().values(hash=prev))
