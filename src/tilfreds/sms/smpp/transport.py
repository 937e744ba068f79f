"""The SMPP transport: several transceiver binds, a window of submit_sm pipelined on each, and
receipts and customers' messages handed to the database in batches.

``send_window`` splits each text with ``sms.encoding`` (never smpplib's splitter, which can cut
an escape pair), spreads the messages over the binds (all segments of one message on one bind),
writes every segment as soon as its bind's window and rate allow and waits for every answer:

- every segment ESME_ROK: ``Submitted`` with one SMSC id per segment;
- a segment written whose answer never came (connection lost, answer overdue): ``InDoubt``;
- a permanent error (bad address, bad length…): ``Rejected(permanent=True)``;
- throttled (ESME_RTHROTTLED, ESME_RMSGQFUL) or never written (not bound, bind backing off):
  ``NotTaken``; the bind backs off, the worker too, the message keeps its attempts;
- any other error: ``Rejected(permanent=False)`` with the SMSC's code.

Deliver_sm are answered only after the events sink has committed them, so a crash loses no
receipt and no reply: the SMSC delivers again what we never answered. Keeps P3 (sent, never
lost), P7 (STOPP replies arrive), P13/P14 (the provider is declared for the processor register).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from tilfreds.sms.encoding import split
from tilfreds.sms.smpp import pdus
from tilfreds.sms.smpp.inbound import TRANSPORT, Reassembly, normalise_id, receipt
from tilfreds.sms.smpp.session import Bind, BindConfig, Countdown, Pending
from tilfreds.sms.transport import (
    Handover,
    InboundSms,
    InDoubt,
    NotTaken,
    OutboundSms,
    Outcome,
    Provider,
    Receipt,
    Rejected,
    Submitted,
    TransportEvents,
)

log = logging.getLogger(__name__)
EVENT_BATCH = 2000
# how long a batch of receipts waits for more: fewer, larger transactions when thousands a
# second come in, at the cost of this much delay for a lone receipt
EVENT_LINGER = 0.05
LINGER_STEP = 0.01  # how often a lingering batch looks whether it is full


@dataclass
class Written:
    """The segments of one message that were written, and how its text was encoded."""

    pendings: list[Pending]
    encoding: str


@dataclass(frozen=True)
class Delivered:
    """A deliver_sm as read, to be answered on the connection it came on."""

    bind: Bind
    generation: int
    sequence: int
    body: bytes


@dataclass(frozen=True)
class Addressing:
    source_ton: int  # for a numeric sender without "+"
    source_npi: int
    submit_id_base: int
    receipt_id_base: int


def address(number: str, ton: int, npi: int) -> pdus.Address:
    """E.164 (+digits) is international; other digits use the configured TON; letters are an
    alphanumeric sender (TON 5)."""
    if number.startswith("+"):
        return pdus.Address(1, 1, number[1:].encode("ascii"))
    if number.isdigit():
        return pdus.Address(ton, npi, number.encode("ascii"))
    return pdus.Address(5, 0, number.encode("latin-1")[:11])


class SmppTransport:
    name = TRANSPORT
    idempotent = False

    def __init__(
        self, provider: Provider, binds: int, config: BindConfig, addressing: Addressing
    ) -> None:
        self.provider = provider
        self.addressing = addressing
        self.binds = [Bind(str(i + 1), config, self._delivered) for i in range(binds)]
        self._events: TransportEvents | None = None
        self._queue: queue.SimpleQueue[Delivered | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._reassembly = Reassembly()
        self._turn = itertools.count()
        self._reference = itertools.count(1)

    def start(self, events: TransportEvents) -> None:
        if self._dispatcher is not None:
            return
        self._events = events
        self._dispatcher = threading.Thread(target=self._dispatch, name="smpp-events", daemon=True)
        self._dispatcher.start()
        for bind in self.binds:
            bind.start()

    def close(self) -> None:
        for bind in self.binds:
            bind.close()
        if self._dispatcher is not None:
            self._queue.put(None)
            self._dispatcher.join(10)
            self._dispatcher = None

    # sending -----------------------------------------------------------------------------------
    def _pick(self) -> Bind | None:
        n = len(self.binds)
        start = next(self._turn)
        for i in range(n):
            bind = self.binds[(start + i) % n]
            if bind.usable:
                return bind
        return None

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        return self.hand(window).outcomes()

    def hand(self, window: Sequence[OutboundSms]) -> Handover:
        """Write the window's submit_sm (waiting for room in a bind's window while an earlier
        window's answers come) and return without waiting for their answers."""
        waiter = Countdown(0)
        written = [self._write(sms, waiter) for sms in window]
        for bind in self.binds:
            bind.flush()
        return _Answers(self, waiter, written)

    def _write(self, sms: OutboundSms, waiter: Countdown) -> Written | Outcome:
        try:
            segments = split(sms.body)
        except ValueError as exc:
            return Rejected(f"text cannot be encoded: {exc}", permanent=True)
        parts = segments.short_messages(next(self._reference) % 256)
        bind = self._pick()
        if bind is None:
            return NotTaken("no SMPP bind is ready (connecting or throttled)")
        a = self.addressing
        source = address(sms.sender, a.source_ton, a.source_npi)
        destination = address(sms.to, a.source_ton, a.source_npi)
        esm_class = pdus.ESM_UDHI if segments.concatenated else 0
        written: list[Pending] = []
        for part in parts:
            build = partial(
                pdus.submit_sm,
                source=source,
                destination=destination,
                short_message=part,
                esm_class=esm_class,
                data_coding=segments.data_coding,
            )
            pending = bind.submit(build, waiter)
            if pending is None:
                break
            written.append(pending)
        if not written:
            return NotTaken(f"SMPP bind {bind.name} is not ready")
        if len(written) < len(parts):
            written.append(_unwritten(waiter))
        return Written(written, segments.encoding)

    def _expire(self, written: list[Written | Outcome]) -> None:
        for bind in self.binds:
            bind.expire([p for w in written if isinstance(w, Written) for p in w.pendings])

    def _outcome(self, message: Written) -> Outcome:
        written = message.pendings
        if any(p.written and (p.lost or p.status is None) for p in written):
            return InDoubt("SMPP connection lost before the SMSC answered")
        statuses = [_NOT_WRITTEN if p.status is None else p.status for p in written]
        failed = [s for s in statuses if s != pdus.ROK]
        permanent = [s for s in failed if s in pdus.PERMANENT]
        if permanent:
            return Rejected("refused by the SMSC", permanent=True, error_code=_code(permanent[0]))
        if any(s in pdus.BUSY or s == _NOT_WRITTEN for s in failed):
            return NotTaken("SMSC throttling" if any(s in pdus.BUSY for s in failed) else "unsent")
        if failed:
            return Rejected("refused by the SMSC", permanent=False, error_code=_code(failed[0]))
        base = self.addressing.submit_id_base
        ids = tuple(normalise_id(p.message_id, base) for p in written)
        return Submitted(provider_ids=ids, segments=len(written), encoding=message.encoding)

    # receiving ---------------------------------------------------------------------------------
    def _delivered(self, bind: Bind, generation: int, sequence: int, body: bytes) -> None:
        self._queue.put(Delivered(bind, generation, sequence, body))

    def _dispatch(self) -> None:
        """Receipts and messages to the sink in batches, answered once it has committed them.
        While a batch lingers this thread sleeps, and takes what came once it wakes: waiting
        on the queue instead woke it for every deliver_sm, each time taking the GIL from the
        worker's sending thread (a tenth of the worker process's samples at 5,000 a second)."""
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            until = time.monotonic() + EVENT_LINGER
            while batch[-1] is not None and self._queue.qsize() < EVENT_BATCH:
                if (left := until - time.monotonic()) <= 0:
                    break
                time.sleep(min(left, LINGER_STEP))
            while len(batch) < EVENT_BATCH:  # what came meanwhile (the rest: the next batch)
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is None for item in batch)
            if delivered := [item for item in batch if item is not None]:
                self._deliver(delivered)

    def _deliver(self, batch: list[Delivered]) -> None:
        a = self.addressing
        receipts: list[Receipt] = []
        messages: list[InboundSms] = []
        statuses: list[int] = []
        for item in batch:
            status = pdus.ROK
            try:
                sm = pdus.parse_deliver_sm(item.body)
                if sm.is_receipt:
                    r = receipt(sm, submit_base=a.submit_id_base, receipt_base=a.receipt_id_base)
                    if r is None:
                        log.warning("smpp: a receipt without a message id, ignored")
                    else:
                        receipts.append(r)
                else:
                    message = self._reassembly.add(sm)
                    if message is not None:
                        messages.append(message)
            except (ValueError, IndexError):
                log.warning("smpp: a malformed deliver_sm, refused")
                status = 0x02  # ESME_RINVCMDLEN: not worth delivering again
            statuses.append(status)
        try:
            assert self._events is not None
            if receipts:
                self._events.receipts(receipts)
            if messages:
                self._events.inbound(messages)
        except Exception:
            log.exception(
                "smpp: recording %d receipts and %d messages failed", len(receipts), len(messages)
            )
            time.sleep(1.0)
            statuses = [pdus.RX_T_APPN] * len(batch)
        answers: dict[tuple[Bind, int], list[bytes]] = {}
        for item, status in zip(batch, statuses, strict=True):
            key = (item.bind, item.generation)
            answers.setdefault(key, []).append(pdus.deliver_sm_resp(item.sequence, status))
        for (bind, generation), data in answers.items():
            bind.reply(b"".join(data), generation)


class _Answers:
    """A window written; its outcomes once every answer came (or was given up on)."""

    def __init__(
        self, transport: SmppTransport, waiter: Countdown, written: list[Written | Outcome]
    ) -> None:
        self._transport, self._waiter, self._written = transport, waiter, written

    def outcomes(self) -> list[Outcome]:
        t, response = self._transport, self._transport.binds[0].config.response_seconds
        if not self._waiter.wait(response):
            t._expire(self._written)
            self._waiter.wait(response)
        return [t._outcome(w) if isinstance(w, Written) else w for w in self._written]

    def ready(self) -> bool:
        return self._waiter.wait(0)


_NOT_WRITTEN = -1


def _unwritten(waiter: Countdown) -> Pending:
    """Stands for the segments of a message that were never written."""
    pending = Pending(waiter)
    pending.status = _NOT_WRITTEN
    return pending


def _code(status: int) -> str:
    return f"0x{status:08X}"
