"""When a person first opened their survey link (the funnel's "opened" step): set by the page's
beacon or by any POST from the page, never by a GET (link scanners open links).

Revision ID: 5d1a8e3c9f42
Revises: 7c3e9a1f5b20
Create Date: 2026-11-25 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "5d1a8e3c9f42"
down_revision: str | None = "7c3e9a1f5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.add_column(
            sa.Column("opened_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True)
        )
    # an invitation answered or declined before this column existed was opened by then
    op.execute(
        "UPDATE invitations SET opened_at = closed_at "
        "WHERE status IN ('answered', 'declined') AND closed_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.drop_column("opened_at")
