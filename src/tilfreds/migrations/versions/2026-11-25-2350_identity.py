"""Identity confirmation before answers (P2) and wrong numbers (P17): the kind a survey's newest
version asks for, on the survey; on the invitation, when it was confirmed, the wrong answers and
the lock they earned, the one-time code's keyed hash, expiry and sends, and when the respondent
said the number is not theirs; on the person, that their number is wrong (no more surveys to it).

Revision ID: 4d2b8e6a9c13
Revises: 5f2d8c1b7a64
Create Date: 2026-11-25 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "4d2b8e6a9c13"
down_revision: str | None = "5f2d8c1b7a64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMES = (
    "identity_confirmed_at",
    "identity_locked_until",
    "identity_code_expires_at",
    "identity_code_sent_at",
    "wrong_number_at",
)


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, tilfreds.db.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("surveys") as batch_op:
        batch_op.add_column(
            sa.Column("identity", sa.String(16), nullable=False, server_default="none")
        )
    with op.batch_alter_table("invitations") as batch_op:
        for name in _TIMES:
            batch_op.add_column(_time(name))
        for name in ("identity_failures", "identity_codes_sent"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("identity_code_hash", sa.String(80), nullable=True))
        batch_op.create_index("ix_invitations_wrong_number_at", ["wrong_number_at", "id"])
    with op.batch_alter_table("people") as batch_op:
        batch_op.add_column(_time("wrong_number_at"))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch_op:
        batch_op.drop_column("wrong_number_at")
    with op.batch_alter_table("invitations") as batch_op:
        batch_op.drop_index("ix_invitations_wrong_number_at")
        for name in ("identity_code_hash", "identity_codes_sent", "identity_failures", *_TIMES):
            batch_op.drop_column(name)
    with op.batch_alter_table("surveys") as batch_op:
        batch_op.drop_column("identity")
