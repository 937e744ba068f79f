"""SMS status throughput, the database's side of issue 6's target (1,500 messages/s end to end,
receipts recorded): the worker drains N due messages through an in-process transport that reports
a delivery receipt for every segment from its own thread, in batches, as an SMPP session's reader
would; timed until every message is ``delivered``. The same drain without receipts runs first in
the same run, as the reference. Figures only; run it with
``python -m bench.sms_receipts [--messages N] [--segments S] [--pg-url URL]``."""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select

from bench.common import DEFAULT_PG_URL, NullTransport, fresh_database, make_runtime
from bench.send_worker import enqueue
from tilfreds.invitations.models import Message
from tilfreds.invitations.states import MessageStatus
from tilfreds.sms.transport import (
    OutboundSms,
    Outcome,
    Receipt,
    ReceiptState,
    Submitted,
    TransportEvents,
)
from tilfreds.worker import Worker

RECEIPT_BATCH = 500  # receipts per events call at most: one transaction each


class Receipting(NullTransport):
    """Takes every SMS in ``segments`` parts and reports each part delivered, from a reader
    thread that hands the events sink whatever has piled up (at most ``RECEIPT_BATCH``)."""

    name = "receipting"

    def __init__(self, segments: int) -> None:
        super().__init__()
        self.segments = segments
        self.pending: queue.Queue[str | None] = queue.Queue()
        self.reader: threading.Thread | None = None
        self.recorded = 0

    def start(self, events: TransportEvents) -> None:
        if self.reader is None:
            self.reader = threading.Thread(target=self._read, args=(events,), daemon=True)
            self.reader.start()

    def close(self) -> None:
        if self.reader is not None:
            self.pending.put(None)
            self.reader.join()
            self.reader = None

    def send(self, sms: OutboundSms) -> Outcome:
        self.sent += 1
        ids = tuple(f"r{sms.reference}-{n}" for n in range(self.segments))
        return Submitted(provider_ids=ids, segments=self.segments)

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        outcomes = super().send_window(window)
        for outcome in outcomes:
            if isinstance(outcome, Submitted):
                for pid in outcome.provider_ids:
                    self.pending.put(pid)
        return outcomes

    def _read(self, events: TransportEvents) -> None:
        while True:
            batch = [self.pending.get()]
            while len(batch) < RECEIPT_BATCH and not self.pending.empty():
                batch.append(self.pending.get())
            ids = [pid for pid in batch if pid is not None]
            events.receipts([Receipt(self.name, pid, ReceiptState.DELIVERED) for pid in ids])
            self.recorded += len(ids)
            if len(ids) < len(batch):
                return


def count(db: object, status: MessageStatus) -> int:
    with db.read_only() as session:  # type: ignore[attr-defined]
        return int(
            session.execute(
                select(func.count()).select_from(Message).where(Message.status == status)
            ).scalar_one()
        )


def run(kind: str, *, messages: int, segments: int, pg_url: str, workdir: Path) -> None:
    for receipts in (False, True):
        db = fresh_database(kind, workdir=workdir, pg_url=pg_url, name="sms_receipts")
        transport = Receipting(segments) if receipts else NullTransport()
        rt = make_runtime(db, workdir=workdir, batch_size=500, transport=transport)
        rt.settings.worker_window = 250
        enqueue(rt, messages)
        worker = Worker(rt)
        started = time.perf_counter()
        drained = worker.drain()
        worker.close()  # waits for the last receipts to be recorded
        elapsed = time.perf_counter() - started
        done = count(db, MessageStatus.DELIVERED if receipts else MessageStatus.SUBMITTED)
        assert drained == done == messages, (drained, done, messages)
        what = f"with receipts ({segments} segment(s) each)" if receipts else "without receipts"
        print(
            f"{kind}: {messages} messages {what}: {elapsed:.2f} s, "
            f"{messages / elapsed:,.0f} messages/s"
            + (f", {messages * segments / elapsed:,.0f} receipts/s" if receipts else "")
        )
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sms_receipts", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=1)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("postgresql",) if args.no_sqlite else ("sqlite", "postgresql"):
            run(
                kind,
                messages=args.messages,
                segments=args.segments,
                pg_url=args.pg_url,
                workdir=Path(tmp),
            )


if __name__ == "__main__":
    main()
