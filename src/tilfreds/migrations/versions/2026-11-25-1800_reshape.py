"""Reshape for what comes next: keyed indexes and ciphertexts name their key.

Revision ID: 3c9a1f0e7b21
Revises: 2d5610e35612
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c9a1f0e7b21"
down_revision: str | None = "2d5610e35612"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = ("people", "suppressions", "dev_phone_messages")


def _refuse_if_people(why: str) -> None:
    if op.get_bind().execute(sa.text("SELECT count(*) FROM people")).scalar_one():
        raise RuntimeError(
            f"{why}; start from an empty database (on the embedded default, move the data "
            "directory aside)"
        )


def upgrade() -> None:
    _refuse_if_people(
        "this database holds data sealed by tilfreds 0.1, whose ciphertexts name no key, so it "
        "cannot be carried over"
    )
    for table in _INDEXED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("phone_index", existing_type=sa.String(64), type_=sa.String(80))


def downgrade() -> None:
    _refuse_if_people("tilfreds 0.1 cannot read data sealed with named keys")
    for table in _INDEXED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("phone_index", existing_type=sa.String(80), type_=sa.String(64))
