"""Keys cannot silently change: the database remembers its keys' fingerprints, and every
entrypoint that uses keys on data refuses a key it does not know (P7 depends on it: an objection
is only found with the key that recorded it). Data files are readable by their owner only."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.conftest import T0
from tests.factories import interaction_in
from tilfreds.cli import app
from tilfreds.config import Settings
from tilfreds.crypto import generate_master_key
from tilfreds.invitations.intake import receive_interaction
from tilfreds.keyring import KEY_FILE_NAME, EncryptionKey, verify_at_start
from tilfreds.rotation.sealed import key_ids_in_use
from tilfreds.runtime import CALLBACK_SECRET_FILE, Runtime, build_runtime

NEW = generate_master_key()


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Exit code and output, on one line (the console wraps long messages)."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def server_env(rt: Runtime, secret: str, previous: str = "") -> dict[str, str]:
    return {
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": secret,
        "TILFREDS_PREVIOUS_SECRET_KEYS": previous,
        "TILFREDS_DATA_DIR": str(rt.settings.data_dir),
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
        "TILFREDS_PUBLIC_URL": "https://survey.example.no",
    }


def embedded_env(data_dir: Path) -> dict[str, str]:
    return {
        "TILFREDS_DATABASE_URL": "",
        "TILFREDS_SECRET_KEY": "",
        "TILFREDS_PREVIOUS_SECRET_KEYS": "",
        "TILFREDS_DATA_DIR": str(data_dir),
    }


def registered(rt: Runtime) -> dict[str, bool]:
    """Registered key ids, each with whether it was retired."""
    with rt.db.read_only() as session:
        rows = session.execute(select(EncryptionKey)).scalars()
        return {row.key_id: row.retired_at is not None for row in rows}


def test_p7_the_first_start_registers_the_key_and_a_changed_key_refuses_to_start(
    rt: Runtime,
) -> None:
    old = server_env(rt, rt.settings.secret_key)
    assert run(old, "db", "upgrade")[0] == 0
    assert registered(rt) == {rt.keys.current_id: False}
    changed = server_env(rt, NEW)
    for command in (["db", "upgrade"], ["worker", "--drain"], ["serve", "--port", "18400"]):
        code, output = run(changed, *command)
        assert code == 2, (command, output)
        assert "TILFREDS_SECRET_KEY" in output and rt.keys.current_id in output
        assert "Traceback" not in output
    assert registered(rt) == {rt.keys.current_id: False}  # nothing registered on refusal
    assert run(old, "worker", "--drain")[0] == 0


def test_a_new_key_with_the_old_one_as_previous_starts_a_rotation(rt: Runtime) -> None:
    old_id = rt.keys.current_id
    assert run(server_env(rt, rt.settings.secret_key), "db", "upgrade")[0] == 0
    code, output = run(server_env(rt, NEW, previous=rt.settings.secret_key), "db", "upgrade")
    assert code == 0, output
    [new_id] = set(registered(rt)) - {old_id}
    assert registered(rt) == {old_id: True, new_id: False}
    assert run(server_env(rt, NEW), "worker", "--drain")[0] == 0  # now known on its own


def test_p7_embedded_lost_key_file_refuses_to_start_without_making_a_new_one(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    assert run(embedded_env(data), "db", "upgrade")[0] == 0
    key_file = data / KEY_FILE_NAME
    key_file.unlink()
    code, output = run(embedded_env(data), "db", "upgrade")
    assert code == 2, output
    assert str(key_file) in output.replace(" ", "") and "restore" in output
    assert not key_file.exists()


def test_embedded_key_file_replaced_by_another_refuses_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "var"
    assert run(embedded_env(data), "db", "upgrade")[0] == 0
    (data / KEY_FILE_NAME).write_text(NEW)
    code, output = run(embedded_env(data), "db", "upgrade")
    assert code == 2 and "the key file" in output and "Traceback" not in output


@pytest.mark.parametrize(
    "content",
    [b"", b"\n", b"not base64 at all!", b"c2hvcnQ=", os.urandom(32), b"\xff" * 44],
    ids=["empty", "blank", "not-base64", "too-short", "raw-bytes", "not-text"],
)
def test_a_malformed_key_file_is_a_clear_error_not_a_traceback(
    tmp_path: Path, content: bytes
) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / KEY_FILE_NAME).write_bytes(content)
    code, output = run(embedded_env(data), "db", "upgrade")
    assert code == 2, output
    assert "configuration error" in output and "is not a valid key" in output
    assert "Traceback" not in output


def test_a_key_file_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "var"
    (data / KEY_FILE_NAME).mkdir(parents=True)  # a directory where the file should be
    code, output = run(embedded_env(data), "db", "upgrade")
    assert code == 2 and "cannot be read" in output and "Traceback" not in output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_embedded_data_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "var"
    rt = build_runtime(Settings(data_dir=data))
    rt.upgrade_schema()
    with rt.db.engine.connect() as conn:  # WAL and SHM exist while a connection is open
        conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        files = {p.name: mode(p) for p in data.iterdir()}
    rt.db.dispose()
    assert mode(data) == 0o700
    assert files == {
        KEY_FILE_NAME: 0o600,
        CALLBACK_SECRET_FILE: 0o600,
        "tilfreds.sqlite3": 0o600,
        "tilfreds.sqlite3-wal": 0o600,
        "tilfreds.sqlite3-shm": 0o600,
    }


def test_p7_a_key_changed_before_any_was_registered_is_caught_by_the_keys_data_names(
    rt: Runtime,
) -> None:
    with rt.db.unit_of_work() as session:  # data from before keys were registered
        receive_interaction(
            session, rt.keys, interaction_in(1), timing=rt.timing(), now=T0, actor="test"
        )
    code, output = run(server_env(rt, NEW), "db", "upgrade")
    assert code == 2 and rt.keys.current_id in output and "restore that key" in output
    assert registered(rt) == {}
    assert run(server_env(rt, NEW, previous=rt.settings.secret_key), "db", "upgrade")[0] == 0


def test_processes_starting_together_register_the_key_once(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("concurrent start-ups need PostgreSQL; SQLite serialises writers")
    start, results = threading.Barrier(6), []

    def start_up() -> None:
        start.wait()
        results.append(
            verify_at_start(rt.db, rt.keys, source="test", now=T0, in_use=key_ids_in_use)
        )

    threads = [threading.Thread(target=start_up) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and sum(bool(r) for r in results) == 1
    assert registered(rt) == {rt.keys.current_id: False}
