"""The send worker: claims due messages, re-checks them, hands them to the SMS transport.

Run as ``tilfreds worker`` (any number of processes on PostgreSQL) or in-process by ``tilfreds
serve`` on SQLite. Each pass is: claim (one transaction), prepare (one), send (no transaction),
record outcomes (one).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import timedelta

from tilfreds.invitations import jobs
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import Submitted, TransportError

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(self, rt: Runtime, *, worker_id: str | None = None) -> None:
        self.rt = rt
        self.id = worker_id or new_worker_id()

    def run_once(self) -> int:
        """One pass; returns how many messages it claimed."""
        rt, s = self.rt, self.rt.settings
        now = rt.clock.now()
        with rt.db.unit_of_work() as session:
            ids = jobs.claim_due(
                session,
                worker_id=self.id,
                now=now,
                limit=s.worker_batch_size,
                lease=timedelta(seconds=s.worker_lease_seconds),
            )
        if not ids:
            return 0
        with rt.db.unit_of_work() as session:
            batch = jobs.prepare(session, rt.keys, ids, ctx=rt.send_context(), now=now)
        outcomes: dict[int, Submitted | TransportError] = {}
        for sms in batch:
            try:
                outcomes[int(sms.reference)] = rt.transport.send(sms)
            except TransportError as exc:
                outcomes[int(sms.reference)] = exc
            except Exception as exc:  # an adapter bug must not lose the outcomes before it
                log.exception("transport %s failed unexpectedly", rt.transport.name)
                outcomes[int(sms.reference)] = TransportError(repr(exc), retryable=True)
        with rt.db.unit_of_work() as session:
            jobs.record_outcomes(
                session,
                worker_id=self.id,
                transport=rt.transport.name,
                outcomes=outcomes,
                now=rt.clock.now(),
            )
        return len(ids)

    def drain(self) -> int:
        """Pass until nothing is due; returns the total claimed."""
        total = 0
        while claimed := self.run_once():
            total += claimed
        return total

    def run(self, stop: threading.Event) -> None:
        """Pass until ``stop`` is set, sleeping between idle passes. Never dies on one bad pass."""
        log.info("worker %s started", self.id)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying")
                busy = 0
            if not busy:
                stop.wait(self.rt.settings.worker_poll_seconds)
        log.info("worker %s stopped", self.id)
