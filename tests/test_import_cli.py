"""``tilfreds import interactions FILE.csv``: bad rows each reported (row, field, reason, never the
value), good rows imported, a rerun imports nothing twice, unknown columns refused before anything
is read (P10), flags and objections skip rows (P7), one audit entry per chunk."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.test_cli import env_for
from tilfreds.audit.models import AuditEntry
from tilfreds.cli import app
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Interaction, Person
from tilfreds.runtime import Runtime

HEADER = ["external_id", "name", "phone", "locale", "channel", "reason", "occurred_at",
          "case_ref", "flags"]  # fmt: skip
# the command reads the system clock: an hour ago is recent enough to ask about
WHEN = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def count(rt: Runtime, model: type) -> int:
    with rt.db.read_only() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)
    return path


def good(n: int, **cells: str) -> list[str]:
    row = {"external_id": f"csv-{n}", "name": "Kari Nordmann", "phone": f"412 {n:05d}",
           "locale": "nb", "channel": "phone", "reason": "payment plan", "occurred_at": WHEN,
           "case_ref": f"C-{n}", "flags": ""} | cells  # fmt: skip
    return [row[c] for c in HEADER]


def run(rt: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", "interactions", *args], env=env_for(rt))
    return result.exit_code, result.output


@pytest.mark.parametrize("processes", ["1", "2"])
def test_p10_bad_rows_are_each_reported_and_the_good_ones_imported(
    rt: Runtime, tmp_path: Path, processes: str
) -> None:
    """Also with the rows checked in two other processes, three rows a chunk: the same report,
    in file order."""
    rows = [
        good(1),
        good(2, phone="22 33 44 55"),  # a landline: row 3 of the sheet
        good(3, flags="dispute;gossip"),  # an unknown flag
        good(4, occurred_at="yesterday"),
        good(5, name="Kari 01017012345"),  # a national id in the name field
        good(6, channel=""),  # required, left empty
        good(7, phone="070-123 45 67", locale="sv"),  # a Swedish mobile, read in Sweden
        good(8, flags="hardship"),  # skipped, but imported
    ]
    report = tmp_path / "errors.csv"
    path = write(tmp_path / "in.csv", rows)
    code, output = run(
        rt, str(path), "--errors", str(report), "--processes", processes, "--chunk", "3"
    )
    assert code == 1, output  # some rows were refused
    with report.open() as fh:
        errors = list(csv.DictReader(fh))
    assert [(e["row"], e["field"]) for e in errors] == [
        ("3", "customer.phone"),
        ("4", "flags.1"),
        ("5", "occurred_at"),
        ("6", "customer.name"),
        ("7", "channel"),
    ]
    text = report.read_text()
    assert "01017012345" not in text and "gossip" not in text and "22 33" not in text
    assert (count(rt, Interaction), count(rt, Invitation), count(rt, Person)) == (3, 2, 2)
    assert "8 rows: 3 imported, 0 received before, 5 refused" in output


def test_a_rerun_of_the_same_file_imports_nothing_twice(rt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", [good(n) for n in range(30)])
    assert run(rt, str(path), "--chunk", "7")[0] == 0
    audit_after_first = count(rt, AuditEntry)
    code, output = run(rt, str(path), "--chunk", "7")
    assert code == 0 and "30 rows: 0 imported, 30 received before, 0 refused" in output
    assert (count(rt, Interaction), count(rt, Message)) == (30, 30)
    assert count(rt, AuditEntry) == audit_after_first


def test_one_audit_entry_per_chunk_not_per_row(rt: Runtime, tmp_path: Path) -> None:
    before = count(rt, AuditEntry)
    path = write(tmp_path / "in.csv", [good(n) for n in range(25)])
    assert run(rt, str(path), "--chunk", "10")[0] == 0
    with rt.db.read_only() as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.seq > before)
        ).scalars()
        batches = [a for a in actions if a == "interaction.batch_received"]
    assert len(batches) == 3  # 10 + 10 + 5 rows


def test_p10_an_unknown_column_refuses_the_whole_file(rt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", [[*good(1), "01017012345"]], header=[*HEADER, "national_id"])
    code, output = run(rt, str(path))
    assert code == 2 and "column 10 is not a field" in output
    assert "national_id" not in output and "01017012345" not in output
    assert count(rt, Interaction) == 0


def test_missing_columns_and_an_empty_file_are_refused(rt: Runtime, tmp_path: Path) -> None:
    code, output = run(rt, str(write(tmp_path / "a.csv", [], header=["external_id", "name"])))
    assert code == 2 and "required columns are missing" in output
    (tmp_path / "empty.csv").write_text("")
    assert run(rt, str(tmp_path / "empty.csv"))[0] == 2
    assert run(rt, str(tmp_path / "absent.csv"))[0] == 2


def test_a_row_with_more_cells_than_columns_is_refused(rt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", [good(1), [*good(2), "extra"]])
    report = tmp_path / "errors.csv"
    code, _ = run(rt, str(path), "--errors", str(report))
    assert code == 1 and "extra" not in report.read_text()
    assert count(rt, Interaction) == 1
