"""SMS status: what the provider said about each message, its ids per segment (receipts match on
them), inbound messages already handled, and a sender per survey.

Revision ID: 8b3e5f1d2c47
Revises: 4d2b8e6c1a90
Create Date: 2026-11-25 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "8b3e5f1d2c47"
down_revision: str | None = "4d2b8e6c1a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE_COLUMNS = ("segments", "encoding", "error_code", "delivered_at", "failed_at")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("segments", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("encoding", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("error_code", sa.String(length=40), nullable=True))
        for name in ("delivered_at", "failed_at"):
            batch.add_column(sa.Column(name, tilfreds.db.UTCDateTime(timezone=True)))
    with op.batch_alter_table("surveys") as batch:
        batch.add_column(sa.Column("sender", sa.String(length=20), nullable=True))
    op.create_table(
        "message_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=20), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("part", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("state_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_parts_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_parts")),
        sa.UniqueConstraint(
            "transport", "provider_id", name=op.f("uq_message_parts_transport_provider_id")
        ),
    )
    op.create_index(op.f("ix_message_parts_message_id"), "message_parts", ["message_id"])
    op.create_table(
        "inbound_seen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=20), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_seen")),
        sa.UniqueConstraint(
            "transport", "provider_id", name=op.f("uq_inbound_seen_transport_provider_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("inbound_seen")
    op.drop_index(op.f("ix_message_parts_message_id"), table_name="message_parts")
    op.drop_table("message_parts")
    with op.batch_alter_table("surveys") as batch:
        batch.drop_column("sender")
    with op.batch_alter_table("messages") as batch:
        for name in reversed(_MESSAGE_COLUMNS):
            batch.drop_column(name)
