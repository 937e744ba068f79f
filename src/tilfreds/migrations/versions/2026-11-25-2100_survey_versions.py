"""Surveys as data: immutable versions holding the whole definition; answers name their version
and the notice version shown with the contact question (P4, P5).

Each existing survey's questions become its version 1 (texts come from the kinds' built-in
wording, every question optional), and its responses point at that version. Going down turns the newest version of each
survey back into question rows.

Revision ID: 7e1c5a9d3f20
Revises: 4d2b8e6c1a90
Create Date: 2026-11-25 21:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import tilfreds.db

revision: str = "7e1c5a9d3f20"
down_revision: str | None = "4d2b8e6c1a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_versions = sa.table(
    "survey_versions",
    sa.column("id", sa.Integer),
    sa.column("survey_id", sa.Integer),
    sa.column("number", sa.Integer),
    sa.column("definition", sa.JSON),
    sa.column("published_at", tilfreds.db.UTCDateTime(timezone=True)),
)
_questions = sa.table(
    "survey_questions",
    sa.column("survey_id", sa.Integer),
    sa.column("position", sa.Integer),
    sa.column("key", sa.String),
    sa.column("kind", sa.String),
    sa.column("required", sa.Boolean),
)


def _questions_table() -> None:
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


def upgrade() -> None:
    op.create_table(
        "survey_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("published_at", tilfreds.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_versions_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_versions")),
        sa.UniqueConstraint(
            "survey_id", "number", name=op.f("uq_survey_versions_survey_id_number")
        ),
    )
    with op.batch_alter_table("survey_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_versions_survey_id"), ["survey_id"])
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("survey_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notice_version", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_responses_survey_version_id_survey_versions"),
            "survey_versions",
            ["survey_version_id"],
            ["id"],
        )
        batch_op.create_index(batch_op.f("ix_responses_survey_version_id"), ["survey_version_id"])

    conn = op.get_bind()
    now = datetime.now(UTC)
    surveys = conn.execute(sa.text("SELECT id, slug, name FROM surveys ORDER BY id")).all()
    for survey_id, slug, name in surveys:
        rows = conn.execute(
            sa.select(_questions.c.key, _questions.c.kind, _questions.c.required)
            .where(_questions.c.survey_id == survey_id)
            .order_by(_questions.c.position)
        ).all()
        # optional, as every start of the previous release made them (P8)
        questions = [{"key": key, "kind": kind} for key, kind, _required in rows]
        definition = {"slug": slug, "name": name, "questions": questions}
        conn.execute(
            _versions.insert().values(
                survey_id=survey_id, number=1, definition=definition, published_at=now
            )
        )
        conn.execute(
            sa.text(
                "UPDATE responses SET survey_version_id = (SELECT id FROM survey_versions "
                "WHERE survey_id = :s AND number = 1) WHERE survey_id = :s"
            ),
            {"s": survey_id},
        )
    with op.batch_alter_table("survey_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_questions_survey_id"))
    op.drop_table("survey_questions")


def downgrade() -> None:
    _questions_table()
    conn = op.get_bind()
    newest = conn.execute(
        sa.text(
            "SELECT v.survey_id, v.definition FROM survey_versions v WHERE v.number = "
            "(SELECT max(w.number) FROM survey_versions w WHERE w.survey_id = v.survey_id)"
        ).columns(sa.column("survey_id", sa.Integer), sa.column("definition", sa.JSON))
    ).all()
    for survey_id, definition in newest:
        for position, question in enumerate(definition["questions"], 1):
            conn.execute(
                _questions.insert().values(
                    survey_id=survey_id,
                    position=position,
                    key=question["key"],
                    kind=question["kind"][:20],
                    required=bool(question.get("required", False)),
                )
            )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responses_survey_version_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_responses_survey_version_id_survey_versions"), type_="foreignkey"
        )
        batch_op.drop_column("notice_version")
        batch_op.drop_column("survey_version_id")
    with op.batch_alter_table("survey_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_versions_survey_id"))
    op.drop_table("survey_versions")
