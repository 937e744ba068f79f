"""``tilfreds audit verify`` over a long log: a fresh PostgreSQL database gets ``entries`` sealed
audit entries (written with COPY, not through the app), then the real command runs in its own
process; its wall time and peak RSS are what the log's length must not blow up.

``.venv/bin/python -m bench.audit_verify --entries 1000000`` runs it once and prints the figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.postgres import prepare_postgres

from bench.common import DEFAULT_PG_URL, SECRET
from tilfreds import migrate
from tilfreds.audit import service as audit
from tilfreds.crypto import Keys
from tilfreds.db import Database

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class VerifyRun:
    entries: int
    seconds: float
    peak_rss_mib: float
    fill_seconds: float


def _sealed_rows(keys: Keys, entries: int) -> Iterator[tuple[Any, ...]]:
    """What ``audit.record`` would have appended, ``entries`` times, chained and sealed."""
    key = keys.current
    base = audit.mac_key(key.audit)
    prev = audit.GENESIS
    for seq in range(1, entries + 1):
        content = [
            seq,
            START + timedelta(seconds=seq),
            f"token:{seq % 7}",
            "interaction.received",
            "interaction",
            str(seq),
            ["case_ref", "channel", "occurred_at", "reason"],
            key.id,
            prev,
        ]
        prev = audit.seal(base, content)
        content[6] = json.dumps(content[6])
        yield (*content, prev)


def fill(db: Database, keys: Keys, entries: int) -> None:
    """Write a sealed chain of ``entries`` entries and its head, with one COPY."""
    columns = ", ".join((*audit.CONTENT, "mac"))
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        with conn.cursor() as cur:
            cur.execute("DELETE FROM audit_log")
            with cur.copy(f"COPY audit_log ({columns}) FROM STDIN") as copy:
                last = (0, audit.GENESIS)
                for row in _sealed_rows(keys, entries):
                    copy.write_row(row)
                    last = (row[0], row[-1])
            cur.execute("UPDATE audit_head SET seq = %s, mac = %s WHERE id = 1", last)
            cur.execute("ANALYZE audit_log")
        conn.commit()
    finally:
        raw.close()


def run(pg_url: str, entries: int) -> VerifyRun:
    """Fill a fresh database at ``pg_url`` (its schema is dropped) and time one verify."""
    keys = Keys.from_master(base64.urlsafe_b64decode(SECRET))
    prepare_postgres(pg_url)
    db = Database(pg_url, session_info=audit.session_info(keys))
    try:
        migrate.upgrade(db)
        began = time.perf_counter()
        fill(db, keys, entries)
        fill_seconds = time.perf_counter() - began
    finally:
        db.dispose()
    with tempfile.TemporaryDirectory() as data_dir:
        env = os.environ | {
            "TILFREDS_DATABASE_URL": pg_url,
            "TILFREDS_SECRET_KEY": SECRET,
            "TILFREDS_DATA_DIR": data_dir,
            "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
        }
        began = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tilfreds", "audit", "verify"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output = proc.stdout.read().decode() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or f"{entries} entries" not in output:
        raise RuntimeError(f"audit verify failed: {output.strip()}")
    return VerifyRun(entries, seconds, usage.ru_maxrss / 1024, fill_seconds)  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_verify", description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    result = run(args.pg_url, args.entries)
    print(
        f"{result.entries} entries written in {result.fill_seconds:.1f} s; audit verify: "
        f"{result.seconds:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
