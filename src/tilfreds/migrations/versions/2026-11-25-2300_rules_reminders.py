"""Rules per survey (reminders, daily quota, sampling), restriction of processing on people (P19),
the mark that an invitation's reminders were queued (P2), the survey an interaction was meant
for (so the funnel counts intake skips per survey), and room for all of a message's skip
reasons.

Revision ID: 7c3e9a1f5b20
Revises: 4d2b8e6c1a90
Create Date: 2026-11-25 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "7c3e9a1f5b20"
down_revision: str | None = "4d2b8e6c1a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("surveys") as batch_op:
        batch_op.add_column(
            sa.Column("reminder_count", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("reminder_after_hours", sa.Integer(), nullable=False, server_default="72")
        )
        batch_op.add_column(sa.Column("daily_quota", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sampling_rate", sa.Float(), nullable=True))
    with op.batch_alter_table("people") as batch_op:
        batch_op.add_column(
            sa.Column("restricted_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.add_column(
            sa.Column("reminders_queued_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("interactions") as batch_op:
        batch_op.add_column(sa.Column("survey_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_interactions_survey_id_surveys"), "surveys", ["survey_id"], ["id"]
        )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.alter_column(
            "skip_reason", existing_type=sa.String(40), type_=sa.String(200), nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.alter_column(
            "skip_reason", existing_type=sa.String(200), type_=sa.String(40), nullable=True
        )
    with op.batch_alter_table("interactions") as batch_op:
        batch_op.drop_constraint(op.f("fk_interactions_survey_id_surveys"), type_="foreignkey")
        batch_op.drop_column("survey_id")
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.drop_column("reminders_queued_at")
    with op.batch_alter_table("people") as batch_op:
        batch_op.drop_column("restricted_at")
    with op.batch_alter_table("surveys") as batch_op:
        for column in ("sampling_rate", "daily_quota", "reminder_after_hours", "reminder_count"):
            batch_op.drop_column(column)
