"""Migrations and models agree, on SQLite and PostgreSQL, and migrations go down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.conftest import wipe
from tilfreds import migrate
from tilfreds.db import Database
from tilfreds.tables import metadata


def test_models_and_migrations_do_not_differ(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
    assert migrate.is_current(database)


def test_downgrade_to_base_and_upgrade_again(database: Database) -> None:
    wipe(database)
    migrate.downgrade(database, "base")
    assert not migrate.is_current(database)
    migrate.upgrade(database)
    assert migrate.is_current(database)
