"""The ``tilfreds`` command's set-up verbs: tokens, schema upgrade, refusing an old schema, and
refusing a busy port before anything is written (also through ``make demo``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import T0
from tests.factories import interaction_payload
from tilfreds import migrate
from tilfreds.api.deps import SESSION_COOKIE
from tilfreds.audit.models import AuditEntry
from tilfreds.cli import app
from tilfreds.operators.service import authenticate, create_token, list_tokens, revoke_token
from tilfreds.runtime import Runtime
from tilfreds.tables import metadata

ROOT = Path(__file__).parents[1]
HOUR = timedelta(hours=1)


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
            with socket.socket() as probe:  # a free port: the refusal must be the schema's
                probe.bind(("127.0.0.1", 0))
                port = str(probe.getsockname()[1])
            refused = CliRunner().invoke(app, ["serve", "--port", port], env=env_for(rt))
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


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def row_counts(rt: Runtime) -> dict[str, int]:
    with rt.db.read_only() as session:
        return {
            t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def run_cli(rt: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    return subprocess.run(
        [sys.executable, "-m", "tilfreds", *args],
        check=False,
        env={**env, **env_for(rt)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_busy_port_is_refused_before_anything_is_written_or_printed(
    rt: Runtime, busy_port: int, command: str
) -> None:
    before = row_counts(rt)
    result = run_cli(rt, command, "--port", str(busy_port))
    assert result.returncode == 2, result.stderr
    assert f"port {busy_port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no banner, no demo token
    assert row_counts(rt) == before  # no demo data, no token, no audit entry


def test_make_demo_passes_host_and_port(rt: Runtime, busy_port: int) -> None:
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "tilfreds").exists(), "the tests run from the environment tilfreds is in"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
    make = ["make", "--no-print-directory", "-o", ".venv/.installed", f"BIN={bin_dir}", "demo"]
    default = subprocess.run(
        [*make, "-n"], cwd=ROOT, capture_output=True, text=True, env=env, check=True
    )
    assert "demo --host 127.0.0.1 --port 8000" in default.stdout, default.stdout
    before = row_counts(rt)
    result = subprocess.run(
        [*make, f"PORT={busy_port}", "HOST=127.0.0.1"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, **env_for(rt)},
        timeout=60,
    )
    assert f"demo --host 127.0.0.1 --port {busy_port}" in result.stdout
    assert result.returncode != 0 and f"port {busy_port}" in result.stderr, result.stderr
    assert row_counts(rt) == before


def cli(rt: Runtime, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env_for(rt))
    assert result.exit_code == 0, result.output
    return result.output


def test_token_list_shows_each_token_and_never_the_token_itself(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        first = create_token(session, name="case system", role="admin", now=T0)
        second = create_token(session, name="[b]night[/b] batch", role="admin", now=T0 + HOUR)
        [first_id, _] = [t.id for t in list_tokens(session)]
        revoke_token(session, token_id=first_id, now=T0 + 2 * HOUR)
    lines = cli(rt, "token", "list").splitlines()
    assert lines[0].split() == ["ID", "ROLE", "CREATED", "REVOKED", "NAME"]
    rows = [line.split(maxsplit=4) for line in lines[1:]]
    assert [r[1:] for r in rows] == [
        ["admin", "2026-11-25T09:00Z", "2026-11-25T11:00Z", "case system"],
        ["admin", "2026-11-25T10:00Z", "-", "[b]night[/b] batch"],  # names are not markup
    ]
    for token in (first, second):
        assert token.removeprefix("tf_")[:8] not in "\n".join(lines)


def test_revoked_token_gets_401_at_once_and_the_revocation_is_audited(
    client: TestClient, rt: Runtime
) -> None:
    assert client.get("/api/v1/surveys").status_code == 200
    [row] = [line.split() for line in cli(rt, "token", "list").splitlines()[1:]]
    assert row[3] == "-"
    assert cli(rt, "token", "revoke", row[0]).strip() == f"token {row[0]} (tests) revoked"

    refused = client.get("/api/v1/surveys")  # same client, next request
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert client.post("/api/v1/interactions", json=interaction_payload()).status_code == 401
    token = client.headers.pop("Authorization").removeprefix("Bearer ")
    client.cookies.set(SESSION_COOKIE, token)  # a console session signed in with it
    assert client.get("/dashboard").headers["location"] == "/login"

    [revoked] = [line.split() for line in cli(rt, "token", "list").splitlines()[1:]]
    assert revoked[3] != "-"
    assert f"already revoked at {revoked[3]}" in cli(rt, "token", "revoke", row[0])
    with rt.db.read_only() as session:
        [info] = list_tokens(session)
        assert info.revoked_at is not None
        entries = session.execute(
            select(AuditEntry).where(AuditEntry.action == "token.revoked")
        ).scalars()
        assert [(e.actor, e.subject_id, e.fields, e.at) for e in entries] == [
            ("cli", row[0], ["revoked_at"], info.revoked_at.replace(microsecond=0))
        ]
    assert "audit log intact" in cli(rt, "audit", "verify")


def test_revoking_an_unknown_token_is_one_clear_line(rt: Runtime) -> None:
    result = CliRunner().invoke(app, ["token", "revoke", "999"], env=env_for(rt))
    assert result.exit_code == 2 and "there is no token 999" in result.output
    assert "Traceback" not in result.output


def test_concurrent_revokes_of_one_token_record_one_revocation(rt: Runtime) -> None:
    with rt.db.unit_of_work() as session:
        for n in range(10):
            create_token(session, name=f"t{n}", role="admin", now=T0)
        ids = [t.id for t in list_tokens(session)]
    outcomes: list[bool] = []

    def revoke(token_id: int, gate: threading.Barrier) -> None:
        gate.wait()
        with rt.db.unit_of_work() as session:
            outcomes.append(revoke_token(session, token_id=token_id, now=T0)[1])

    for token_id in ids:  # several rounds: one race can be won by chance
        gate = threading.Barrier(2)
        threads = [threading.Thread(target=revoke, args=(token_id, gate)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(outcomes) == [False] * len(ids) + [True] * len(ids)
    with rt.db.read_only() as session:
        revocations = session.execute(
            select(func.count()).where(AuditEntry.action == "token.revoked")
        ).scalar_one()
    assert revocations == len(ids)


def test_an_embedded_database_from_tilfreds_0_1_is_refused_with_a_clear_message(
    tmp_path: Path,
) -> None:
    """The reshape cannot carry 0.1's unnamed-key ciphertexts over: say so, no traceback."""
    from sqlalchemy import text

    from tilfreds import migrate
    from tilfreds.db import Database

    db = Database(f"sqlite:///{tmp_path / 'tilfreds.sqlite3'}")
    migrate.upgrade(db, "2d5610e35612")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO people (phone_index, phone_cipher, name_cipher, locale, created_at) "
                "VALUES ('x', x'00', x'00', 'nb', '2026-01-01 00:00:00')"
            )
        )
    db.dispose()
    result = CliRunner().invoke(
        app,
        ["db", "upgrade"],
        env={"TILFREDS_DATA_DIR": str(tmp_path), "TILFREDS_DATABASE_URL": ""},
    )
    assert result.exit_code == 2
    assert "start from an empty database" in " ".join(result.output.split())
    assert "Traceback" not in result.output
