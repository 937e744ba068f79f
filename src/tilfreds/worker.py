"""The send worker: claims due messages, re-checks them, hands them to the SMS transport.

Run as ``tilfreds worker`` (any number of processes on PostgreSQL) or in-process by ``tilfreds
serve`` on SQLite. A pass takes a batch, prepares it and marks its first windows in flight (one
transaction) and hands those to the transport. The transaction that records a window's outcomes
also marks the next window as in flight (and renews the lease on the rest), which is handed over
at once, while the window before it is still on the wire: the transport never runs dry between
windows, and the database's time and the provider's overlap. A message is marked in flight, and
committed, before it is handed over; at most two windows (together ``worker_window`` messages)
are handed over and not recorded at once, so a crash leaves at most that many in doubt, and a
slow batch is never claimed twice. While a backlog drains (the batch was full), the last window's
outcomes are recorded by the transaction that takes the next batch: one commit fewer a batch
(see docs/benchmarks-history.md). Once every window of a batch is in flight, a window answered
by the time the one before it is recorded is recorded with it (a transport that answers at once,
such as the dev phone, records a batch that fits in flight once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tilfreds.invitations import jobs
from tilfreds.invitations.outbox import take
from tilfreds.invitations.outcomes import ReceiptsFirst, record_outcomes
from tilfreds.invitations.postpone import postpone
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import (
    Answered,
    Handover,
    InDoubt,
    NotTaken,
    OutboundSms,
    Rejected,
    Submitted,
)
from tilfreds.sweep import sweep

log = logging.getLogger(__name__)
Answer = Submitted | Rejected | InDoubt  # what the worker records; NotTaken is given back
# the batch's lease is renewed once this share of it is left or less: a window's transaction
# renews it, and two windows are sent between two of them, so the lease must outlast two windows
RENEW_WHEN_LEFT = 0.9


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Batch:
    ids: list[int]  # all the messages taken
    windows: list[list[OutboundSms]]  # those to send
    ours: set[int]  # marked in flight
    full: bool  # as many as a batch takes: more may be due
    leased_until: datetime


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
        self._leased_until = datetime.min.replace(tzinfo=UTC)  # the batch's lease, renewed late
        self._receipts_first = ReceiptsFirst()  # whether windows settle in their own sync

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
        """Housekeeping that needs no hurry (see ``tilfreds.sweep``)."""
        sweep(self.rt, resend_in_doubt=self._resend_in_doubt)

    def run_once(self) -> Pass:
        """One pass: claim, prepare, send window by window, record."""
        rt = self.rt
        if time.monotonic() >= self._next_sweep:
            self.sweep()
            self._next_sweep = time.monotonic() + rt.settings.worker_sweep_seconds
        # take the due messages, prepare them and lease them, the first windows straight to in
        # flight, in one transaction: a crash right after it leaves them in doubt, as it would a
        # moment later, once they are sending
        with rt.db.unit_of_work() as session:
            self._record(session, self._unrecorded, now=rt.clock.now())
            batch = self._take(session)
        self._leased_until = batch.leased_until
        self._unrecorded = {}
        if not batch.ids:
            return Pass(0)
        return self._send(batch)

    def _take(self, session: Session) -> Batch:
        """Take, prepare and lease a batch, its first windows straight to in flight."""
        rt, s = self.rt, self.rt.settings
        now = rt.clock.now()
        prepared = take(session, rt.keys, limit=s.worker_batch_size, ctx=rt.send_context(), now=now)
        size, ahead = self._window_plan()
        sendable = prepared.sendable
        windows = [sendable[i : i + size] for i in range(0, len(sendable), size)]
        ours = jobs.lease(
            session,
            worker_id=self.id,
            ids=prepared.ids,
            sending=[mid for w in windows[: 1 + ahead] for mid in window_ids(w)],
            lease_until=now + self._lease,
        )
        jobs.record_unsendable(
            session, worker_id=self.id, skipped=prepared.skipped, failed=prepared.failed
        )
        postpone(session, worker_id=self.id, later=prepared.later)
        full = len(prepared.ids) == s.worker_batch_size
        return Batch(prepared.ids, windows, ours, full, leased_until=now + self._lease)

    def _window_plan(self) -> tuple[int, int]:
        """(messages a window, windows marked in flight ahead of the oldest one not recorded).
        Window n+1 is handed over while window n's outcomes are recorded, so two windows are in
        flight at once: each is half of ``worker_window``, which stays the most a crash can leave
        in doubt. A window of one is sent and recorded in turn."""
        window = self.rt.settings.worker_window
        return (window // 2, 1) if window >= 2 else (window, 0)

    def _send(self, batch: Batch) -> Pass:
        """Send the windows of a batch. The windows marked in flight are all handed to the
        transport at once; as each window's outcomes come (oldest first), one transaction
        records them and marks the next window in flight, which is handed over at once. So
        while window n is recorded the transport holds the windows after it (the provider's
        own window does not drain between ours) and the windows handed over but not recorded
        never exceed ``worker_window``."""
        windows, ours = batch.windows, batch.ours
        _, ahead = self._window_plan()
        handed = deque(self._hand(w, ours) for w in windows[: 1 + ahead])
        marked = len(handed)  # windows[:marked] are marked in flight
        collected = 0
        try:
            while collected < len(windows):
                outcomes, not_taken = self._collect(handed.popleft())
                collected += 1
                # nothing is left to mark in flight and the next window is answered already:
                # recorded with this one, one transaction fewer (a transport that answers at
                # once records a batch that fits in flight with the next batch's take)
                while not not_taken and marked == len(windows) and handed and handed[0][1].ready():
                    more, not_taken = self._collect(handed.popleft())
                    outcomes |= more
                    collected += 1
                if not_taken:  # what the windows handed after it did send is recorded too
                    while handed:
                        more, refused = self._collect(handed.popleft())
                        outcomes |= more
                        not_taken += refused
                    self._give_back(windows[marked:], not_taken, outcomes)
                    return Pass(len(batch.ids), busy=True)
                if collected == len(windows) and batch.full:
                    self._unrecorded = outcomes  # more is due: the next pass records these first
                    break
                ours |= self._step(windows, marked, outcomes)
                if marked < len(windows):
                    handed.append(self._hand(windows[marked], ours))
                    marked += 1
            return Pass(len(batch.ids))
        finally:  # a failed pass: wait for what is on the wire (it stays in flight, in doubt)
            for rest in handed:
                with contextlib.suppress(Exception):
                    self._collect(rest)

    def _step(
        self, windows: list[list[OutboundSms]], n: int, answers: dict[int, Answer]
    ) -> set[int]:
        """One transaction: record these outcomes, mark window ``n`` in flight and renew the lease
        on the windows after it; returns the ids of window ``n`` that may go out. It runs while
        the windows before ``n`` are on the wire."""
        with self.rt.db.unit_of_work() as session:
            now = self.rt.clock.now()
            lease_until = now + self._lease
            start = window_ids(windows[n]) if n < len(windows) else []
            if start and now + self._lease * RENEW_WHEN_LEFT >= self._leased_until:
                # renewed once a tenth of it has run out (a slow provider; mostly a batch is sent
                # long before): up to two windows go out before the next of these transactions
                # (the one on the wire, the one handed after this one commits), so renewing at
                # half a lease let two windows slower than a quarter of it expire the rest
                later = [int(sms.reference) for w in windows[n + 1 :] for sms in w]
                jobs.renew_lease(session, worker_id=self.id, ids=later, lease_until=lease_until)
                self._leased_until = lease_until
            # nothing follows in this transaction: committed in the statements' sync
            return self._record(
                session, answers, now=now, start=start, lease_until=lease_until, commit=True
            )

    def _give_back(
        self, rest: list[list[OutboundSms]], not_taken: list[int], answers: dict[int, Answer]
    ) -> None:
        """The transport was busy: record what it did take, and give the rest back to the
        queue (those it did not take undo their attempt; the windows never marked keep it)."""
        later = [int(sms.reference) for w in rest for sms in w]
        with self.rt.db.unit_of_work() as session:
            self._record(session, answers, now=self.rt.clock.now())
            jobs.release(session, worker_id=self.id, ids=not_taken, handed=True)
            jobs.release(session, worker_id=self.id, ids=later, handed=False)

    def _record(
        self,
        session: Session,
        answers: dict[int, Answer],
        *,
        now: datetime,
        start: Sequence[int] = (),
        lease_until: datetime | None = None,
        commit: bool = False,
    ) -> set[int]:
        """Record outcomes and mark ``start`` in flight: the ids of it that may go out."""
        if not (answers or start):
            return set()
        return record_outcomes(
            session,
            worker_id=self.id,
            transport=self.rt.transport.name,
            outcomes=answers,
            now=now,
            resend_in_doubt=self._resend_in_doubt,
            start=start,
            lease_until=lease_until,
            commit=commit,
            receipts_first=self._receipts_first,
        )

    def flush(self) -> None:
        """Record outcomes still held for the next pass; before the worker stops."""
        if self._unrecorded:
            with self.rt.db.unit_of_work() as session:
                self._record(session, self._unrecorded, now=self.rt.clock.now())
            self._unrecorded = {}

    def _hand(self, window: list[OutboundSms], ours: set[int]) -> tuple[list[int], Handover]:
        """Hand a window's messages that are still ours (never a cancelled one) to the
        transport; an adapter's error leaves them all in doubt."""
        transport = self.rt.transport
        handing = [sms for sms in window if int(sms.reference) in ours]
        ids = [int(sms.reference) for sms in handing]
        if not handing:
            return ids, Answered([])
        try:
            return ids, transport.hand(handing)
        except Exception as exc:  # an adapter bug: what it sent is unknown
            log.exception("transport %s failed unexpectedly", transport.name)
            return ids, Answered([InDoubt(repr(exc))] * len(ids))

    def _collect(self, handed: tuple[list[int], Handover]) -> tuple[dict[int, Answer], list[int]]:
        """A handed window's outcomes, and the ids the transport did not take (it was busy)."""
        ids, handover = handed
        try:
            answers = handover.outcomes()
        except Exception as exc:
            log.exception("transport %s failed unexpectedly", self.rt.transport.name)
            answers = [InDoubt(repr(exc))] * len(ids)
        outcomes: dict[int, Answer] = {}
        not_taken: list[int] = []
        for message_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, NotTaken):
                not_taken.append(message_id)
            else:
                outcomes[message_id] = answer
        if not_taken:
            log.warning("transport %s is busy; backing off", self.rt.transport.name)
        return outcomes, not_taken

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
