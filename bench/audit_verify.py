"""``tilfreds audit verify`` over a long audit log (PostgreSQL): a chain of N entries is written
straight into the table with COPY, each sealed by the audit code's own hashing function, then the
real command runs in a child process; its wall time and peak RSS (``bench.peaks``) are the figures.

Works with the audit code before and after its keyed rewrite: it uses ``seal``/``mac_key`` when
the service has them, else ``_digest``; with neither it appends through ``audit.record``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table
from tests.postgres import prepare_postgres

from bench.common import SECRET, bench_keys, open_database, progress
from bench.peaks import run_watched
from tilfreds import migrate
from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditEntry, AuditHead
from tilfreds.db import Database

START = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT_SECONDS = 1800.0
RECORDS_PER_TRANSACTION = 10_000  # the slow fallback through audit.record


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    method: str  # how the chain was written
    fill_seconds: float
    seconds: float
    peak_rss_kib: int
    exit_code: int
    output: str  # the command's last lines

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and f"{self.entries} entries" in self.output


def _content(seq: int) -> dict[str, Any]:
    """One entry as intake writes it (an interaction received), at one-second steps."""
    return {
        "seq": seq,
        "at": START + timedelta(seconds=seq),
        "actor": f"token:{seq % 7 + 1}",
        "action": "interaction.received",
        "subject_type": "interaction",
        "subject_id": str(seq),
        "fields": ["case_ref", "channel", "occurred_at", "reason"],
    }


def _keyed_chain(entries: int) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The keyed chain: HMAC under the current key's audit key, through ``audit.seal``."""
    key = bench_keys().current
    base = audit.mac_key(key.audit)  # type: ignore[attr-defined]
    seal = cast(Callable[[Any, list[Any]], str], audit.seal)  # type: ignore[attr-defined]
    names = list(audit.CONTENT)  # type: ignore[attr-defined]

    def rows() -> Iterator[dict[str, Any]]:
        prev = audit.GENESIS
        for seq in range(1, entries + 1):
            row = {**_content(seq), "key_id": key.id, "prev_mac": prev}
            prev = row["mac"] = seal(base, [row[name] for name in names])
            yield row

    return [*names, "mac"], rows()


def _hashed_chain(entries: int) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The plain hash chain of the audit code before its keyed rewrite, through ``_digest``."""
    digest = cast(Callable[[Any], str], audit._digest)  # type: ignore[attr-defined]

    def rows() -> Iterator[dict[str, Any]]:
        prev = audit.GENESIS
        for seq in range(1, entries + 1):
            row = {**_content(seq), "prev_hash": prev}
            prev = row["hash"] = digest(SimpleNamespace(**row))
            yield row

    names = ["seq", "at", "actor", "action", "subject_type", "subject_id", "fields"]
    return [*names, "prev_hash", "hash"], rows()


def _copy(db: Database, columns: list[str], rows: Iterator[dict[str, Any]], entries: int) -> None:
    """COPY the rows into audit_log and point the head at the last one, in one transaction."""
    head_columns = [c.name for c in cast(Table, AuditHead.__table__).c if c.name != "id"]
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        last: dict[str, Any] = {}
        with conn.cursor() as cur, progress() as bar:
            task = bar.add_task("audit entries, sealed and copied", total=entries)
            cur.execute("DELETE FROM audit_log")
            with cur.copy(f"COPY audit_log ({', '.join(columns)}) FROM STDIN") as copy:
                for n, row in enumerate(rows, 1):
                    copy.write_row(
                        [json.dumps(row[c]) if c == "fields" else row[c] for c in columns]
                    )
                    last = row
                    if n % 10_000 == 0:
                        bar.update(task, completed=n)
            bar.update(task, completed=entries)
            # the head row: the newest seq and its hash/MAC, whichever the schema names it
            values = [last["seq"], last[columns[-1]]]
            assignments = ", ".join(f"{c} = %s" for c in head_columns)
            cur.execute(f"UPDATE audit_head SET {assignments} WHERE id = 1", values)
            cur.execute("ANALYZE audit_log")
        conn.commit()
    finally:
        raw.close()


def _through_record(db: Database, entries: int) -> None:
    with progress() as bar:
        task = bar.add_task("audit entries through audit.record", total=entries)
        for start in range(1, entries + 1, RECORDS_PER_TRANSACTION):
            with db.unit_of_work() as session:
                for seq in range(start, min(start + RECORDS_PER_TRANSACTION, entries + 1)):
                    c = _content(seq)
                    audit.record(
                        session,
                        actor=c["actor"],
                        action=c["action"],
                        subject_type=c["subject_type"],
                        subject_id=c["subject_id"],
                        at=c["at"],
                        fields=c["fields"],
                    )
            bar.update(task, completed=min(start + RECORDS_PER_TRANSACTION - 1, entries))


def fill(db: Database, entries: int) -> str:
    """Write a valid chain of ``entries`` entries; returns how it was sealed."""
    names = {c.name for c in cast(Table, AuditEntry.__table__).c}
    if hasattr(audit, "seal") and hasattr(audit, "mac_key") and "mac" in names:
        _copy(db, *_keyed_chain(entries), entries)
        return "COPY, sealed with audit.seal (keyed chain)"
    if hasattr(audit, "_digest") and "hash" in names:
        _copy(db, *_hashed_chain(entries), entries)
        return "COPY, hashed with audit._digest (plain hash chain)"
    _through_record(db, entries)
    return f"audit.record, {RECORDS_PER_TRANSACTION:,} entries a transaction"


def verify_in_child(pg_url: str) -> tuple[float, int, int, str]:
    """Run ``tilfreds audit verify``; wall seconds, peak RSS (KiB), exit code, last lines."""
    with tempfile.TemporaryDirectory(prefix="tilfreds-audit-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TILFREDS_")}
        env |= {
            "TILFREDS_DATABASE_URL": pg_url,
            "TILFREDS_SECRET_KEY": SECRET,
            "TILFREDS_DATA_DIR": data_dir,
            "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",  # the CLI builds a full runtime
        }
        with tempfile.TemporaryFile() as log:
            run = run_watched(
                [sys.executable, "-m", "tilfreds", "audit", "verify"],
                env=env,
                output=log,
                timeout=TIMEOUT_SECONDS,
            )
            log.seek(0)
            lines = [line for line in log.read().decode(errors="replace").splitlines() if line]
    return run.seconds, run.peak_kib, run.returncode, " / ".join(lines[-3:])


def run(*, pg_url: str, entries: int) -> VerifyResult:
    prepare_postgres(pg_url)
    db = open_database(pg_url)
    try:
        migrate.upgrade(db)
        t0 = time.perf_counter()
        method = fill(db, entries)
        fill_seconds = time.perf_counter() - t0
    finally:
        db.dispose()
    seconds, peak, code, last = verify_in_child(pg_url)
    return VerifyResult(entries, method, fill_seconds, seconds, peak, code, last)
