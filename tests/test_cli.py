"""The ``tilfreds`` command's set-up verbs: tokens, schema upgrade, and refusing an old schema."""

from __future__ import annotations

from typer.testing import CliRunner

from tilfreds import migrate
from tilfreds.cli import app
from tilfreds.operators.service import authenticate
from tilfreds.runtime import Runtime


def env_for(rt: Runtime) -> dict[str, str]:
    return {
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": rt.settings.secret_key,
        "TILFREDS_DATA_DIR": str(rt.settings.data_dir),
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
    }


def test_token_create_prints_a_token_that_works_once_shown(rt: Runtime) -> None:
    result = CliRunner().invoke(
        app, ["token", "create", "--role", "admin", "--name", "case system"], env=env_for(rt)
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("tf_")
    with rt.db.read_only() as session:
        operator = authenticate(session, token)
    assert (operator.name, operator.role) == ("case system", "admin")


def test_token_create_refuses_an_unknown_role(rt: Runtime) -> None:
    result = CliRunner().invoke(
        app, ["token", "create", "--role", "root", "--name", "x"], env=env_for(rt)
    )
    assert result.exit_code == 2 and "role must be one of admin" in result.output


def test_db_upgrade_brings_an_old_schema_current_and_serve_refuses_until_then(
    rt: Runtime,
) -> None:
    migrate.downgrade(rt.db, "base")
    try:
        if rt.db.dialect == "postgresql":
            refused = CliRunner().invoke(app, ["serve", "--port", "1"], env=env_for(rt))
            assert refused.exit_code == 2 and "tilfreds db upgrade" in refused.output
        result = CliRunner().invoke(app, ["db", "upgrade"], env=env_for(rt))
        assert result.exit_code == 0 and "up to date" in result.output
        assert migrate.is_current(rt.db)
    finally:
        migrate.upgrade(rt.db)


def test_configuration_errors_are_one_clear_line_not_a_traceback(rt: Runtime) -> None:
    env = {**env_for(rt), "TILFREDS_SMS_SENDER": "Company"}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 2
    assert "configuration error" in result.output and "Traceback" not in result.output
