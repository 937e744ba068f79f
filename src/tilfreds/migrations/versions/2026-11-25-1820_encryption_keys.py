"""Register the keys a database was sealed with (fingerprints only), so a changed key is refused.

Revision ID: 4d2b8e6c1a90
Revises: 5a7d3c2b9e14
Create Date: 2026-11-25 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "4d2b8e6c1a90"
down_revision: str | None = "5a7d3c2b9e14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "encryption_keys",
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_encryption_keys")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_encryption_keys_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("encryption_keys")
