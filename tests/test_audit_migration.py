"""Upgrading a database whose audit log is a plain SHA-256 chain checks that chain, then seals it
with the master key; a broken chain, or an upgrade without the keys, is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.test_audit import write_entries
from tilfreds import migrate
from tilfreds.audit import service as audit
from tilfreds.db import Database
from tilfreds.runtime import Runtime

BEFORE = "3c9a1f0e7b21"  # the last revision with the plain chain


@pytest.fixture
def old_log(rt: Runtime) -> Iterator[Runtime]:
    """The fixture's database with four entries, taken back to the plain chain."""
    write_entries(rt, 3)
    migrate.downgrade(rt.db, BEFORE)
    try:
        yield rt
    finally:
        if not migrate.is_current(rt.db):  # a refused upgrade: leave the database usable
            with rt.db.engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_log"))
                conn.execute(text(f"UPDATE audit_head SET seq = 0, hash = '{audit.GENESIS}'"))
            migrate.upgrade(rt.db)


def test_p12_upgrade_checks_the_plain_chain_and_seals_it(old_log: Runtime) -> None:
    migrate.upgrade(old_log.db)
    with old_log.db.snapshot() as session:
        result = audit.verify(session)
        key_ids = set(session.execute(text("SELECT key_id FROM audit_log")).scalars())
    assert result.ok and result.entries == 4, result.problem
    assert key_ids == {old_log.keys.current.id}


def test_p12_upgrade_refuses_a_broken_plain_chain(old_log: Runtime) -> None:
    with old_log.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'token:9' WHERE seq = 3"))
    with pytest.raises(RuntimeError, match="the audit log is broken at entry 3"):
        migrate.upgrade(old_log.db)
    assert not migrate.is_current(old_log.db)


def test_upgrade_without_the_keys_refuses_to_seal_a_chain(old_log: Runtime) -> None:
    bare = Database(old_log.db.url)
    try:
        with pytest.raises(RuntimeError, match="run `tilfreds db upgrade`"):
            migrate.upgrade(bare)
    finally:
        bare.dispose()
    assert not migrate.is_current(old_log.db)
