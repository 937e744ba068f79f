"""Delivery receipts handed to the send worker's recording transaction: one writer, one commit.

An SMSC sends a receipt a moment after it answered the submit_sm, often before the worker has
recorded that answer. Written in transactions of their own, the receipts and a window's
``link_parts`` upsert the same message_parts rows and settle the same messages, so each waits on
the other's row locks, and each commits apart (docs/benchmarks.md, section 6). Through the desk,
the transport's reader thread hands a batch of receipts over and waits: the worker's next
recording transaction writes them with a window's outcomes (``record_outcomes(delivery=…)``),
and only once that has committed does the reader acknowledge them, so a crash loses none (the
SMSC delivers again what was never acknowledged). If no recording transaction takes a batch
within ``LINGER`` (the worker is idle, or taking a batch), the reader writes it itself, as
without the desk. Inbound messages always go straight to the database.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tilfreds.sms.transport import InboundSms, Receipt, TransportEvents

LINGER = 0.02  # seconds a batch waits for a recording transaction (one a window) to take it


class Handed:
    """A batch of receipts on the desk; ``done`` once written (``error`` if that failed)."""

    __slots__ = ("done", "error", "receipts")

    def __init__(self, receipts: Sequence[Receipt]) -> None:
        self.receipts = receipts
        self.done = threading.Event()
        self.error: BaseException | None = None


class ReceiptDesk:
    """The events sink a transport with its own reader thread gets (``TransportEvents``)."""

    def __init__(self, events: TransportEvents, *, linger: float = LINGER) -> None:
        self._events = events
        self._linger = linger
        self._lock = threading.Lock()
        self._waiting: list[Handed] = []

    def receipts(self, receipts: Sequence[Receipt]) -> None:
        """Returns once the receipts are committed; raises if writing them failed (so the
        transport does not acknowledge them)."""
        if not receipts:
            return
        handed = Handed(receipts)
        with self._lock:
            self._waiting.append(handed)
        if not handed.done.wait(self._linger):
            with self._lock:
                mine = handed in self._waiting
                if mine:
                    self._waiting.remove(handed)
            if mine:  # not taken: written here, in a transaction of its own
                self._events.receipts(receipts)
                return
            handed.done.wait()  # taken: its transaction is under way
        if handed.error is not None:
            raise handed.error

    def inbound(self, messages: Sequence[InboundSms]) -> None:
        self._events.inbound(messages)

    def take(self) -> list[Handed]:
        """The batches waiting, for the caller's transaction to write; it must then call
        ``written`` with them, whether it committed or not."""
        with self._lock:
            taken, self._waiting = self._waiting, []
        return taken

    @staticmethod
    def written(taken: list[Handed], error: BaseException | None = None) -> None:
        for handed in taken:
            handed.error = error
            handed.done.set()
