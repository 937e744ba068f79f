"""The kernel's database behaviour: aware UTC times everywhere, and readers that never wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from tilfreds.people.models import Suppression
from tilfreds.runtime import Runtime


def test_times_come_back_aware_and_in_utc(rt: Runtime) -> None:
    oslo = timezone(timedelta(hours=1))
    with rt.db.unit_of_work() as session:
        session.add(
            Suppression(
                phone_index="x" * 64,
                source="t",
                created_at=datetime(2026, 11, 25, 10, 0, tzinfo=oslo),
            )
        )
    with rt.db.read_only() as session:
        stored = session.execute(select(Suppression.created_at)).scalar_one()
    assert stored == datetime(2026, 11, 25, 9, 0, tzinfo=UTC) and stored.tzinfo == UTC


def test_naive_times_are_refused(rt: Runtime) -> None:
    with pytest.raises(Exception, match="naive datetime"), rt.db.unit_of_work() as session:
        session.add(Suppression(phone_index="y" * 64, source="t", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_a_reader_does_not_wait_for_an_open_writer(rt: Runtime) -> None:
    with rt.db.unit_of_work() as writer:
        writer.add(Suppression(phone_index="z" * 64, source="t", created_at=rt.clock.now()))
        writer.flush()  # the writer now holds the write lock until it commits
        with rt.db.read_only() as reader:  # a waiting reader would fail: "database is locked"
            seen = reader.execute(select(Suppression)).scalars().all()
        assert seen == []  # and it does not see uncommitted work
