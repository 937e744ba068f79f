"""The send worker: claims due messages, re-checks them, hands them to the SMS transport.

Run as ``tilfreds worker`` (any number of processes on PostgreSQL) or in-process by ``tilfreds
serve`` on SQLite. A pass takes a batch, prepares it and marks its first window in flight (one
transaction), then sends it one window at a time; between windows one transaction records what
the transport said, marks the next window as in flight and renews the lease on the rest. So a
crash leaves at most one window in doubt, and a slow batch is never claimed twice. While a
backlog drains (the batch was full), the last window's outcomes are recorded by the transaction
that takes the next batch: one commit fewer a batch (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tilfreds.invitations import jobs, receipts, reminders
from tilfreds.invitations.outbox import take
from tilfreds.invitations.outcomes import record_outcomes
from tilfreds.invitations.postpone import postpone
from tilfreds.invitations.service import expire_overdue
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import InDoubt, NotTaken, OutboundSms, Rejected, Submitted

log = logging.getLogger(__name__)
Answer = Submitted | Rejected | InDoubt  # what the worker records; NotTaken is given back
UNMATCHED_AFTER = timedelta(hours=1)  # receipts matching no message this long are reported


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Pass:
    claimed: int
    busy: bool = False  # the transport asked us to back off


class Worker:
    def __init__(self, rt: Runtime, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.id = worker_id or new_worker_id()
        self._next_sweep = 0.0
        self._backoff = 0.0
        # outcomes of a full batch's last window, recorded in the transaction that claims the
        # next batch (one commit fewer a batch while a backlog drains); see ``flush``
        self._unrecorded: dict[int, Answer] = {}

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.rt.settings.worker_lease_seconds)

    @property
    def _resend_in_doubt(self) -> bool:
        return self.rt.settings.resend_in_doubt or self.rt.transport.idempotent

    def open(self) -> None:
        """Open the transport's session, its receipts and replies going to the database."""
        transport = self.rt.transport
        provider = transport.provider
        log.info(
            "SMS transport %s: provider %s (%s)", transport.name, provider.name, provider.country
        )
        transport.start(self.rt.events)

    def close(self) -> None:
        """Record what is held, then close the transport's session."""
        try:
            self.flush()
        finally:
            self.rt.transport.close()

    def sweep(self) -> None:
        """Housekeeping that needs no hurry: leases that ran out, invitations that expired, the
        reminders of invitations sent, receipts that match no message (reported, and deleted once
        kept ``unmatched_receipts_days``)."""
        rt, s = self.rt, self.rt.settings
        with rt.db.unit_of_work() as session:
            now = rt.clock.now()
            recovery = jobs.recover_expired_leases(
                session, now=now, resend_in_doubt=self._resend_in_doubt
            )
            expired = expire_overdue(session, now=now)
            reminders.queue_reminders(session, now=now)
            stray = receipts.unmatched(  # those that became stray since the last sweep
                session,
                older_than=now - UNMATCHED_AFTER,
                newer_than=now - UNMATCHED_AFTER - timedelta(seconds=s.worker_sweep_seconds),
            )
            purged = receipts.purge_unmatched(
                session, older_than=now - timedelta(days=s.unmatched_receipts_days)
            )
        if recovery.in_doubt or recovery.failed or expired:
            log.warning(
                "sweep: %d messages in doubt after a worker stopped, %d given up, %d requeued; "
                "%d invitations expired",
                recovery.in_doubt,
                recovery.failed,
                recovery.requeued,
                expired,
            )
        if stray:
            log.warning(
                "%d more delivery receipts match no message after %s; kept in message_parts "
                "for reconciliation (docs/sms.md)",
                stray,
                UNMATCHED_AFTER,
            )
        if purged:
            log.warning(
                "sweep: deleted %d delivery receipts that matched no message for %g days "
                "(TILFREDS_UNMATCHED_RECEIPTS_DAYS)",
                purged,
                s.unmatched_receipts_days,
            )

    def run_once(self) -> Pass:
        """One pass: claim, prepare, send window by window, record."""
        rt, s = self.rt, self.rt.settings
        if time.monotonic() >= self._next_sweep:
            self.sweep()
            self._next_sweep = time.monotonic() + s.worker_sweep_seconds
        # take the due messages, prepare them and lease them, the first window straight to in
        # flight, in one transaction: a crash right after it leaves that window in doubt, as it
        # would a moment later, once it is sending
        with rt.db.unit_of_work() as session:
            now = rt.clock.now()
            self._record(session, self._unrecorded, now=now)
            prepared = take(
                session, rt.keys, limit=s.worker_batch_size, ctx=rt.send_context(), now=now
            )
            ids = prepared.ids
            windows = [
                prepared.sendable[i : i + s.worker_window]
                for i in range(0, len(prepared.sendable), s.worker_window)
            ]
            ours = jobs.lease(
                session,
                worker_id=self.id,
                ids=ids,
                sending=window_ids(windows[0]) if windows else [],
                lease_until=now + self._lease,
            )
            jobs.record_unsendable(
                session, worker_id=self.id, skipped=prepared.skipped, failed=prepared.failed
            )
            postpone(session, worker_id=self.id, later=prepared.later)
        self._unrecorded = {}
        if not ids:
            return Pass(0)
        outcomes: dict[int, Answer] = {}
        busy = False
        for n, window in enumerate(windows):
            not_taken = self._send(window, ours, outcomes)
            if not not_taken and n == len(windows) - 1 and len(ids) == s.worker_batch_size:
                self._unrecorded = outcomes  # more is due: the next pass records these first
                break
            with rt.db.unit_of_work() as session:
                self._record(session, outcomes, now=rt.clock.now())
                outcomes = {}
                if not_taken:
                    busy = True
                    rest = [int(sms.reference) for w in windows[n + 1 :] for sms in w]
                    jobs.release(session, worker_id=self.id, ids=not_taken, handed=True)
                    jobs.release(session, worker_id=self.id, ids=rest, handed=False)
                    break
                ours = self._start(session, windows, n + 1)
        return Pass(len(ids), busy=busy)

    def _record(self, session: Session, answers: dict[int, Answer], *, now: datetime) -> None:
        if answers:
            record_outcomes(
                session,
                worker_id=self.id,
                transport=self.rt.transport.name,
                outcomes=answers,
                now=now,
                resend_in_doubt=self._resend_in_doubt,
            )

    def flush(self) -> None:
        """Record outcomes still held for the next pass; before the worker stops."""
        if self._unrecorded:
            with self.rt.db.unit_of_work() as session:
                self._record(session, self._unrecorded, now=self.rt.clock.now())
            self._unrecorded = {}

    def _start(self, session: Session, windows: list[list[OutboundSms]], n: int) -> set[int]:
        """Mark window ``n`` as in flight and renew the lease on the windows after it."""
        if n >= len(windows):
            return set()
        lease_until = self.rt.clock.now() + self._lease
        later = [int(sms.reference) for w in windows[n + 1 :] for sms in w]
        jobs.renew_lease(session, worker_id=self.id, ids=later, lease_until=lease_until)
        return jobs.start_sending(
            session,
            worker_id=self.id,
            ids=window_ids(windows[n]),
            lease_until=lease_until,
        )

    def _send(
        self,
        window: list[OutboundSms],
        ours: set[int],
        outcomes: dict[int, Answer],
    ) -> list[int]:
        """Hand a window to the transport; returns the ids it did not take (it was busy).
        Messages whose answer was lost are recorded in doubt with the other outcomes."""
        transport = self.rt.transport
        handing = [sms for sms in window if int(sms.reference) in ours]  # never a cancelled one
        if not handing:
            return []
        try:
            answers = transport.send_window(handing)
        except Exception as exc:  # an adapter bug: what it sent is unknown
            log.exception("transport %s failed unexpectedly", transport.name)
            answers = [InDoubt(repr(exc))] * len(handing)
        not_taken: list[int] = []
        for sms, answer in zip(handing, answers, strict=True):
            message_id = int(sms.reference)
            if isinstance(answer, NotTaken):
                not_taken.append(message_id)
            else:
                outcomes[message_id] = answer
        if not_taken:
            log.warning("transport %s is busy; backing off", transport.name)
        return not_taken

    def _wait(self, busy: bool, sleep: Callable[[float], object]) -> None:
        s = self.rt.settings
        if busy:
            self._backoff = min(
                s.worker_backoff_max_seconds, max(s.worker_backoff_seconds, self._backoff * 2)
            )
            sleep(self._backoff)
        else:
            self._backoff = 0.0

    def drain(self) -> int:
        """Pass until nothing is due; returns the total claimed. Backs off while the transport is
        busy, as ``run`` does. Opens the transport (if not yet open) and leaves it open."""
        total = 0
        self.open()
        try:
            while (result := self.run_once()).claimed:
                total += result.claimed
                self._wait(result.busy, time.sleep)
        finally:
            self.flush()
        return total

    def run(self, stop: threading.Event) -> None:
        """Pass until ``stop`` is set, sleeping between idle passes. Never dies on one bad pass."""
        log.info("worker %s started", self.id)
        self.open()
        try:
            while not stop.is_set():
                try:
                    result = self.run_once()
                except Exception:
                    log.exception("worker pass failed; retrying")
                    result = Pass(0)
                self._wait(result.busy, stop.wait)
                if not result.claimed:
                    stop.wait(self.rt.settings.worker_poll_seconds)
        finally:
            self.close()
        log.info("worker %s stopped", self.id)


def window_ids(window: list[OutboundSms]) -> list[int]:
    return [int(sms.reference) for sms in window]
