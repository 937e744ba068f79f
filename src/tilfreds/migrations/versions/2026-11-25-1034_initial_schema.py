"""Initial schema: people, interactions, surveys, invitations, messages, responses, audit.

Revision ID: 2d5610e35612
Revises:
Create Date: 2026-11-25 10:34:12.376487
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "2d5610e35612"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("subject_type", sa.String(length=60), nullable=False),
        sa.Column("subject_id", sa.String(length=60), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_log_seq")),
    )
    op.create_table(
        "dev_phone_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("phone_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dev_phone_messages")),
    )
    with op.batch_alter_table("dev_phone_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dev_phone_messages_phone_index"), ["phone_index"], unique=False
        )

    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("phone_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("name_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("phone_index", name=op.f("uq_people_phone_index")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("phone_index", name=op.f("uq_suppressions_phone_index")),
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("slug", name=op.f("uq_surveys_slug")),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("case_ref", sa.String(length=120), nullable=False),
        sa.Column("occurred_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_interactions_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
        sa.UniqueConstraint("external_id", name=op.f("uq_interactions_external_id")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_interactions_person_id"), ["person_id"], unique=False)

    op.create_table(
        "survey_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_questions_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_questions")),
        sa.UniqueConstraint("survey_id", "key", name=op.f("uq_survey_questions_survey_id_key")),
    )
    with op.batch_alter_table("survey_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_survey_questions_survey_id"), ["survey_id"], unique=False
        )

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_invitations_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_invitations_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name=op.f("fk_invitations_survey_id_surveys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("code", name=op.f("uq_invitations_code")),
        sa.UniqueConstraint("interaction_id", name=op.f("uq_invitations_interaction_id")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitations_survey_id"), ["survey_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("send_after", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("transport", sa.String(length=20), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("skip_reason", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", tilfreds.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_messages_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_invitation_id"), ["invitation_id"], unique=False
        )
        batch_op.create_index(
            "ix_messages_status_send_after", ["status", "send_after"], unique=False
        )

    op.create_table(
        "responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("submitted_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("contact_consent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_responses_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("fk_responses_invitation_id_invitations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name=op.f("fk_responses_survey_id_surveys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.UniqueConstraint("invitation_id", name=op.f("uq_responses_invitation_id")),
    )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_responses_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_responses_survey_id"), ["survey_id"], unique=False)

    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("question_key", sa.String(length=40), nullable=False),
        sa.Column("value_int", sa.Integer(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_answers_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
        sa.UniqueConstraint(
            "response_id", "question_key", name=op.f("uq_answers_response_id_question_key")
        ),
    )
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_answers_response_id"), ["response_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answers_response_id"))

    op.drop_table("answers")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responses_survey_id"))
        batch_op.drop_index(batch_op.f("ix_responses_interaction_id"))

    op.drop_table("responses")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_send_after")
        batch_op.drop_index(batch_op.f("ix_messages_invitation_id"))

    op.drop_table("messages")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_survey_id"))
        batch_op.drop_index(batch_op.f("ix_invitations_person_id"))

    op.drop_table("invitations")
    with op.batch_alter_table("survey_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_questions_survey_id"))

    op.drop_table("survey_questions")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_person_id"))

    op.drop_table("interactions")
    op.drop_table("surveys")
    op.drop_table("suppressions")
    op.drop_table("people")
    with op.batch_alter_table("dev_phone_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dev_phone_messages_phone_index"))

    op.drop_table("dev_phone_messages")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
    op.drop_table("api_tokens")
