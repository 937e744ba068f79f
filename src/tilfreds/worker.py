"""The send worker: claims due messages, re-checks them, hands them to the SMS transport.

Run as ``tilfreds worker`` (any number of processes on PostgreSQL) or in-process by ``tilfreds
serve`` on SQLite. A pass takes a batch, prepares it and marks its first windows in flight (one
transaction), then sends it one window at a time. The transaction that records a window's outcomes
also marks a later window as in flight and renews the lease on the rest, and it runs on a recorder
thread while the next window is on the wire (pipelined: the database's time and the provider's
overlap). A message is marked in flight, and committed, before it is handed over; at most two
windows (together ``worker_window`` messages) are in flight at once, so a crash leaves at most that
many in doubt, and a slow batch is never claimed twice. While a backlog drains (the batch was
full), the last window's outcomes are recorded by the transaction that takes the next batch: one
commit fewer a batch (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session

from tilfreds.invitations import conversation, jobs, receipts, reminders
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
        self._recorder_pool: ThreadPoolExecutor | None = None  # records while the next is sent
        self._leased_until = datetime.min.replace(tzinfo=UTC)  # the batch's lease, renewed late

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
            self._stop_recorder()
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
            conversation.close_idle(
                session, idle=timedelta(hours=s.sms_reply_window_hours), now=now
            )
            stray = receipts.unmatched(  # those that became stray since the last sweep
                session,
                older_than=now - UNMATCHED_AFTER,
                newer_than=now - UNMATCHED_AFTER - timedelta(seconds=s.worker_sweep_seconds),
            )
            purged = receipts.purge_unmatched(
                session, older_than=now - timedelta(days=s.unmatched_receipts_days)
            )
        if recovery.in_doubt or recovery.failed:
            log.warning(
                "sweep: %d messages in doubt after a worker stopped, %d given up, %d requeued",
                recovery.in_doubt,
                recovery.failed,
                recovery.requeued,
            )
        if expired:  # routine: a link's validity ran out
            log.info("sweep: %d invitations expired", expired)
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
        # take the due messages, prepare them and lease them, the first windows straight to in
        # flight, in one transaction: a crash right after it leaves them in doubt, as it would a
        # moment later, once they are sending
        with rt.db.unit_of_work() as session:
            now = rt.clock.now()
            self._record(session, self._unrecorded, now=now)
            prepared = take(
                session, rt.keys, limit=s.worker_batch_size, ctx=rt.send_context(), now=now
            )
            ids = prepared.ids
            size, ahead = self._window_plan()
            windows = [
                prepared.sendable[i : i + size] for i in range(0, len(prepared.sendable), size)
            ]
            self._leased_until = now + self._lease
            ours = jobs.lease(
                session,
                worker_id=self.id,
                ids=ids,
                sending=[mid for w in windows[: 1 + ahead] for mid in window_ids(w)],
                lease_until=self._leased_until,
            )
            jobs.record_unsendable(
                session, worker_id=self.id, skipped=prepared.skipped, failed=prepared.failed
            )
            postpone(session, worker_id=self.id, later=prepared.later)
        self._unrecorded = {}
        if not ids:
            return Pass(0)
        busy = self._send_batch(windows, ours, ahead, full=len(ids) == s.worker_batch_size)
        return Pass(len(ids), busy=busy)

    def _window_plan(self) -> tuple[int, int]:
        """(messages a window, windows marked in flight ahead of the one being sent). Pipelined,
        window n+1 is on the wire while window n's outcomes are recorded, so two windows are in
        flight at once: each is half of ``worker_window``, which stays the most a crash can leave
        in doubt. A window of one is sent and recorded in turn."""
        window = self.rt.settings.worker_window
        return (window // 2, 1) if window >= 2 else (window, 0)

    def _send_batch(
        self, windows: list[list[OutboundSms]], ours: set[int], ahead: int, *, full: bool
    ) -> bool:
        """Send the windows of a batch, each one's outcomes recorded by the transaction that also
        marks window n+1+ahead in flight: on the recorder thread while the next window is sent
        (pipelined), or before it (not). Returns whether the transport was busy."""
        recording: Future[set[int]] | None = None
        try:
            for n, window in enumerate(windows):
                outcomes: dict[int, Answer] = {}
                not_taken = self._send(window, ours, outcomes)
                if recording is not None:  # window n-1 recorded, window n+ahead in flight
                    ours |= recording.result()
                    recording = None
                if not_taken:
                    self._give_back(windows, n, not_taken, outcomes, ahead)
                    return True
                if n == len(windows) - 1 and full:
                    self._unrecorded = outcomes  # more is due: the next pass records these first
                    return False
                step = partial(self._step, windows, n + 1 + ahead, outcomes)
                if ahead:
                    recording = self._recorder().submit(step)
                else:
                    ours |= step()
            return False
        finally:
            if recording is not None:
                recording.result()

    def _step(
        self, windows: list[list[OutboundSms]], n: int, answers: dict[int, Answer]
    ) -> set[int]:
        """One transaction: record these outcomes, mark window ``n`` in flight and renew the lease
        on the windows after it; returns the ids of window ``n`` that may go out."""
        with self.rt.db.unit_of_work() as session:
            self._record(session, answers, now=self.rt.clock.now())
            return self._start(session, windows, n)

    def _give_back(
        self,
        windows: list[list[OutboundSms]],
        n: int,
        not_taken: list[int],
        answers: dict[int, Answer],
        ahead: int,
    ) -> None:
        """The transport was busy at window ``n``: record what it did take, and give the rest
        back to the queue (those marked in flight ahead undo their attempt: never handed)."""
        marked = [int(sms.reference) for w in windows[n + 1 : n + 1 + ahead] for sms in w]
        rest = [int(sms.reference) for w in windows[n + 1 + ahead :] for sms in w]
        with self.rt.db.unit_of_work() as session:
            self._record(session, answers, now=self.rt.clock.now())
            jobs.release(session, worker_id=self.id, ids=not_taken + marked, handed=True)
            jobs.release(session, worker_id=self.id, ids=rest, handed=False)

    def _recorder(self) -> ThreadPoolExecutor:
        if self._recorder_pool is None:
            self._recorder_pool = ThreadPoolExecutor(1, thread_name_prefix="worker-record")
        return self._recorder_pool

    def _stop_recorder(self) -> None:
        if self._recorder_pool is not None:
            self._recorder_pool.shutdown()
            self._recorder_pool = None

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
        """Mark window ``n`` as in flight; renew the lease on the windows after it once half of
        it has run out (a slow provider; mostly a batch is sent long before)."""
        if n >= len(windows):
            return set()
        now = self.rt.clock.now()
        lease_until = now + self._lease
        if now + self._lease / 2 >= self._leased_until:
            later = [int(sms.reference) for w in windows[n + 1 :] for sms in w]
            jobs.renew_lease(session, worker_id=self.id, ids=later, lease_until=lease_until)
            self._leased_until = lease_until
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
            self._stop_recorder()  # its thread is started again by the next pass, if any
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
