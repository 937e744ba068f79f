"""Alembic environment: batch mode (SQLite can't ALTER much), same scripts on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tilfreds.db import make_engine
from tilfreds.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `tilfreds db upgrade`")
run_migrations_online()
