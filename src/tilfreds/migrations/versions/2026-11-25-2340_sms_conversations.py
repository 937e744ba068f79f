"""Two-way SMS surveys: one conversation per invitation, with the question waiting for its
reply, how often it was asked again, the answers until the last one stores them, and when the
person last replied.

Revision ID: 5f2d8c1b7a64
Revises: 5d1a8e3c9f42
Create Date: 2026-11-25 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "5f2d8c1b7a64"
down_revision: str | None = "5d1a8e3c9f42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("survey_version_id", sa.Integer(), nullable=False),
        sa.Column("question_key", sa.String(length=40), nullable=True),
        sa.Column("reasks", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("started_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_sms_conversations_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survey_version_id"],
            ["survey_versions.id"],
            name=op.f("fk_sms_conversations_survey_version_id_survey_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_conversations")),
        sa.UniqueConstraint("invitation_id", name=op.f("uq_sms_conversations_invitation_id")),
    )
    op.create_index(
        "ix_sms_conversations_status_last_activity_at",
        "sms_conversations",
        ["status", "last_activity_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_sms_conversations_status_last_activity_at", table_name="sms_conversations")
    op.drop_table("sms_conversations")
