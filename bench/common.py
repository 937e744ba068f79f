"""What every benchmark shares: databases (SQLite temp file, PostgreSQL from
``TILFREDS_BENCH_PG_URL``), the runtime built as the tests build it, a null SMS transport, input
factories and machine facts. Measures nothing itself."""

from __future__ import annotations

import base64
import os
import platform
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from sqlalchemy import create_engine, text
from tests.postgres import prepare_postgres

from tilfreds import migrate
from tilfreds.audit import service as audit
from tilfreds.clock import SystemClock
from tilfreds.config import Settings
from tilfreds.crypto import Keys, generate_master_key
from tilfreds.db import Database
from tilfreds.invitations.intake import InteractionIn
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import OutboundSms, Outcome, PerMessage, Provider, Submitted
from tilfreds.surveys.service import ensure_default_survey

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = os.environ.get(
    "TILFREDS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/tilfreds_bench"
)
PUBLIC_URL = "https://survey.example.no"
SECRET = generate_master_key()  # a throwaway key: benchmark data is never kept


class NullTransport(PerMessage):
    """A ``tilfreds.sms.transport.Transport`` that takes every SMS at once, so a worker's time is
    all database and queue work. ``on_send`` (if given) is told of each SMS, for progress bars."""

    name = "null"
    provider = Provider(name="none (benchmark)", country="NO")
    idempotent = False  # like a real provider: a message in doubt is not sent again by itself

    def __init__(self, on_send: Callable[[], object] | None = None) -> None:
        self.sent = 0
        self.on_send = on_send

    def send(self, sms: OutboundSms) -> Outcome:
        self.sent += 1
        if self.on_send is not None:
            self.on_send()
        return Submitted(provider_ids=(f"null-{sms.reference}",))


# --- input -------------------------------------------------------------------------------------

OCCURRED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # recent: surveyed


def phone_digits(n: int) -> str:
    """A distinct, valid Norwegian mobile number (8 digits starting with 4) for each ``n``."""
    return f"4{1_000_000 + n:07d}"


def interaction_in(n: int, *, prefix: str = "bench") -> InteractionIn:
    """Service-level input, already normalised as the API would hand it over."""
    return InteractionIn(
        external_id=f"{prefix}-{n}",
        survey=None,
        name=f"Kunde {n}",
        phone_e164=f"+47{phone_digits(n)}",
        locale="nb",
        channel="phone",
        reason="payment plan",
        occurred_at=OCCURRED_AT,
        case_ref=f"C-{n}",
    )


def interaction_payload(n: int, *, prefix: str = "bench") -> dict[str, Any]:
    """The JSON a case system posts to ``/api/v1/interactions``."""
    digits = phone_digits(n)
    return {
        "external_id": f"{prefix}-{n}",
        "customer": {
            "name": "Kari Nordmann",
            "phone": f"{digits[:3]} {digits[3:5]} {digits[5:]}",
            "locale": "nb-NO",
        },
        "channel": "phone",
        "reason": "payment plan",
        "occurred_at": OCCURRED_AT.isoformat(),
        "case_ref": f"C-{n}",
    }


# --- databases ---------------------------------------------------------------------------------


def postgres_version(url: str) -> str | None:
    """The server's version, or None when it cannot be reached (its benchmarks are skipped)."""
    try:
        prepare_postgres(url)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("SHOW server_version")).scalar_one())
        finally:
            engine.dispose()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"note: PostgreSQL unreachable at {url}; skipping it ({reason})")
        return None


def fresh_database(kind: str, *, workdir: Path, pg_url: str, name: str) -> Database:
    """An empty, migrated database with the default survey: a new SQLite file in ``workdir``,
    or PostgreSQL's ``public`` schema dropped and recreated."""
    if kind == "sqlite":
        path = workdir / f"{name}.sqlite3"
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)  # an earlier round's
        url = f"sqlite:///{path}"
    else:
        prepare_postgres(pg_url)
        url = pg_url
    db = open_database(url)
    migrate.upgrade(db)
    with db.unit_of_work() as session:
        ensure_default_survey(session, now=datetime.now(UTC))
    return db


def bench_keys() -> Keys:
    return Keys.from_master(base64.urlsafe_b64decode(SECRET))


def open_database(url: str) -> Database:
    """``Database(url)`` whose sessions carry the keys that seal the audit chain."""
    return Database(url, session_info=audit.session_info(bench_keys()))


def make_runtime(
    db: Database, *, workdir: Path, batch_size: int, transport: NullTransport
) -> Runtime:
    """A runtime assembled like ``tests/conftest.py`` does, with the real system clock."""
    settings = Settings(
        data_dir=workdir,
        database_url=db.url,
        secret_key=SECRET,
        public_url=PUBLIC_URL,
        worker_batch_size=batch_size,
        send_windows=False,  # the queue's work is measured at any hour, not the window's waits
    )
    return Runtime(
        settings=settings, db=db, keys=bench_keys(), clock=SystemClock(), transport=transport
    )


# --- reporting helpers -------------------------------------------------------------------------


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", table_column=Column(width=42, no_wrap=True)),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() + (" + uncommitted changes in src/" if dirty.stdout else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_facts(pg_version: str | None) -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPUs": f"{os.cpu_count()} × {_cpu_model()}",
        "Memory": _memory_total(),
        "OS": platform.platform(),
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": pg_version or "unreachable (its benchmarks were skipped)",
        "tilfreds": f"{version('tilfreds')} at commit {_git_revision()}",
        "Libraries": ", ".join(
            f"{d} {version(d)}" for d in ("sqlalchemy", "fastapi", "uvicorn", "psycopg", "httpx")
        ),
    }
