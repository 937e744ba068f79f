"""The queue's two indexes on messages made partial: the claim's on (send_after, id) holds only
queued messages, the expired leases' on lease_until only claimed and sending ones. A message
leaving the queue, or its lease, then leaves no entry behind to write: the send worker's updates
(leased, in flight, submitted) each insert fewer index entries.

Revision ID: 7a3c5e9b2d10
Revises: 4d2b8e6a9c13
Create Date: 2026-11-26 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3c5e9b2d10"
down_revision: str | None = "4d2b8e6a9c13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as in tilfreds.invitations.models when this was written
_DUE = "status = 'queued'"
_LEASED = "status IN ('claimed', 'sending')"


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {f"{dialect}_where": sa.text(condition) for dialect in ("postgresql", "sqlite")}


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_status_send_after_id")
        batch_op.drop_index("ix_messages_status_lease_until")
        batch_op.create_index("ix_messages_due", ["send_after", "id"], **_where(_DUE))
        batch_op.create_index("ix_messages_leased", ["lease_until"], **_where(_LEASED))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_leased")
        batch_op.drop_index("ix_messages_due")
        batch_op.create_index("ix_messages_status_lease_until", ["status", "lease_until"])
        batch_op.create_index("ix_messages_status_send_after_id", ["status", "send_after", "id"])
