"""Reshape for what comes next.

- keyed indexes name their key (longer), ciphertexts are sealed to their place;
- statuses are enums (VARCHAR + CHECK on both databases);
- a message has a purpose and optional links (person, invitation, or a sealed number);
- a response keeps the survey, channel, reason and language, and outlives the links to its person;
- an interaction that is not surveyed keeps no person and says why;
- the claim, lease and expiry queries get the indexes they need;
- the dev phone keys what it was sent on our message reference.

Revision ID: 3c9a1f0e7b21
Revises: 2d5610e35612
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db
from tilfreds.errors import ConfigurationError

revision: str = "3c9a1f0e7b21"
down_revision: str | None = "2d5610e35612"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = ("people", "suppressions", "dev_phone_messages")
INVITATION_STATUS = ("pending", "sent", "answered", "declined", "objected", "expired")
MESSAGE_STATUS = (
    "queued",
    "claimed",
    "sending",
    "submitted",
    "delivered",
    "failed",
    "expired",
    "skipped",
    "in_doubt",
)
MESSAGE_PURPOSE = (
    "invitation",
    "reminder",
    "survey_question",
    "identity_code",
    "rights_notice",
    "objection_confirmation",
)


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=False, length=24)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _refuse_if_people(why: str) -> None:
    if op.get_bind().execute(sa.text("SELECT count(*) FROM people")).scalar_one():
        raise ConfigurationError(
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

    op.execute("DELETE FROM dev_phone_messages")  # a simulated phone: nothing of value
    with op.batch_alter_table("dev_phone_messages") as batch_op:
        batch_op.drop_column("body")
        batch_op.add_column(sa.Column("body_cipher", sa.LargeBinary(), nullable=False))
        batch_op.alter_column("reference", existing_type=sa.String(64), nullable=True)
        batch_op.create_unique_constraint(
            batch_op.f("uq_dev_phone_messages_reference"), ["reference"]
        )

    with op.batch_alter_table("interactions") as batch_op:
        batch_op.add_column(sa.Column("skip_reasons", sa.String(200), nullable=True))
        batch_op.alter_column("person_id", existing_type=sa.Integer(), nullable=True)

    with op.batch_alter_table("invitations") as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(12),
            type_=_enum(INVITATION_STATUS, "invitation_status"),
            existing_nullable=False,
        )
        batch_op.create_check_constraint("invitation_status", _one_of("status", INVITATION_STATUS))
        batch_op.create_index("ix_invitations_status_expires_at", ["status", "expires_at"])

    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(
            sa.Column("purpose", _enum(MESSAGE_PURPOSE, "message_purpose"), nullable=False)
        )
        batch_op.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("to_cipher", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("body_cipher", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("submitted_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column(
            "status",
            existing_type=sa.String(10),
            type_=_enum(MESSAGE_STATUS, "message_status"),
            existing_nullable=False,
        )
        batch_op.alter_column("invitation_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_index("ix_messages_status_send_after")
        batch_op.create_index(batch_op.f("ix_messages_person_id"), ["person_id"])
        batch_op.create_index("ix_messages_status_lease_until", ["status", "lease_until"])
        batch_op.create_index("ix_messages_status_send_after_id", ["status", "send_after", "id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_person_id_people"),
            "people",
            ["person_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_column("sent_at")
        batch_op.drop_column("kind")
        batch_op.create_check_constraint("message_status", _one_of("status", MESSAGE_STATUS))
        batch_op.create_check_constraint("message_purpose", _one_of("purpose", MESSAGE_PURPOSE))
        batch_op.create_check_constraint(
            "has_recipient", "person_id IS NOT NULL OR to_cipher IS NOT NULL"
        )

    with op.batch_alter_table("responses") as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(20), nullable=False))
        batch_op.add_column(sa.Column("reason", sa.String(120), nullable=False))
        batch_op.add_column(sa.Column("locale", sa.String(8), nullable=False))
        batch_op.alter_column("invitation_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("interaction_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(
            batch_op.f("fk_responses_interaction_id_interactions"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_responses_invitation_id_invitations"), type_="foreignkey"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_responses_invitation_id_invitations"),
            "invitations",
            ["invitation_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_responses_interaction_id_interactions"),
            "interactions",
            ["interaction_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    _refuse_if_people("tilfreds 0.1 cannot read data sealed with named keys")
    with op.batch_alter_table("responses") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_responses_interaction_id_interactions"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_responses_invitation_id_invitations"), type_="foreignkey"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_responses_invitation_id_invitations"),
            "invitations",
            ["invitation_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_responses_interaction_id_interactions"),
            "interactions",
            ["interaction_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.alter_column("interaction_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("invitation_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("locale")
        batch_op.drop_column("reason")
        batch_op.drop_column("channel")

    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_messages_has_recipient"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_messages_message_purpose"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_messages_message_status"), type_="check")
        batch_op.add_column(sa.Column("kind", sa.String(20), nullable=False))
        batch_op.add_column(
            sa.Column("sent_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint(batch_op.f("fk_messages_person_id_people"), type_="foreignkey")
        batch_op.drop_index("ix_messages_status_send_after_id")
        batch_op.drop_index("ix_messages_status_lease_until")
        batch_op.drop_index(batch_op.f("ix_messages_person_id"))
        batch_op.create_index("ix_messages_status_send_after", ["status", "send_after"])
        batch_op.alter_column("invitation_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column(
            "status",
            existing_type=_enum(MESSAGE_STATUS, "message_status"),
            type_=sa.String(10),
            existing_nullable=False,
        )
        batch_op.drop_column("submitted_at")
        batch_op.drop_column("body_cipher")
        batch_op.drop_column("to_cipher")
        batch_op.drop_column("person_id")
        batch_op.drop_column("purpose")

    with op.batch_alter_table("invitations") as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_invitations_invitation_status"), type_="check")
        batch_op.drop_index("ix_invitations_status_expires_at")
        batch_op.alter_column(
            "status",
            existing_type=_enum(INVITATION_STATUS, "invitation_status"),
            type_=sa.String(12),
            existing_nullable=False,
        )

    with op.batch_alter_table("interactions") as batch_op:
        batch_op.alter_column("person_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("skip_reasons")

    op.execute("DELETE FROM dev_phone_messages")
    with op.batch_alter_table("dev_phone_messages") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_dev_phone_messages_reference"), type_="unique")
        batch_op.alter_column("reference", existing_type=sa.String(64), nullable=False)
        batch_op.drop_column("body_cipher")
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=False))

    for table in _INDEXED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("phone_index", existing_type=sa.String(80), type_=sa.String(64))
