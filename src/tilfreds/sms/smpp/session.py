"""One SMPP transceiver bind: its socket, its window of submit_sm in flight, its reader thread.

The sender (the worker's thread) writes submit_sm while fewer than ``window`` are unanswered and
the rate limit allows; the reader thread matches submit_sm_resp to sequence numbers, answers
enquire_link, hands deliver_sm to the transport, sends enquire_link when the link is idle, and
after a lost connection fails what was in flight (in doubt) and binds again with back-off.
Keeps P3 (nothing is lost: every message handed over gets an answer or is in doubt).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tilfreds.sms.smpp import pdus
from tilfreds.sms.transport import TransportError

log = logging.getLogger(__name__)

RECONNECT_FIRST, RECONNECT_MAX = 0.25, 30.0
THROTTLE_MAX = 60.0


@dataclass(frozen=True)
class BindConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str
    window: int
    rate: float
    enquire_link_seconds: float
    response_seconds: float
    throttle_seconds: float
    tls: ssl.SSLContext | None


class Countdown:
    """Wakes the sender once every PDU of its window has its answer."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()
        self._done = threading.Event()
        if count == 0:
            self._done.set()

    def add(self) -> None:
        with self._lock:
            self._left += 1
            self._done.clear()

    def tick(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


class Pending:
    """One submit_sm: whether it was written, and its answer (status, message id) or ``lost``
    (its connection went before the answer came)."""

    __slots__ = ("lost", "message_id", "status", "waiter", "written")

    def __init__(self, waiter: Countdown) -> None:
        self.status: int | None = None
        self.message_id = ""
        self.lost = False
        self.written = False
        self.waiter = waiter


class RateLimit:
    """At most ``rate`` acquisitions per second, evenly spaced. A caller up to ``SLACK`` late (a
    sleep that overran, a thread the machine kept waiting) catches up, so the rate holds over
    time and no second gets more than ``SLACK`` worth extra; after a longer pause the schedule
    restarts from now, with no burst."""

    SLACK = 0.05  # seconds

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0

    def acquire(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        at = self._next if now - self._next <= max(self.interval, self.SLACK) else now
        if at > now:
            self.sleep(at - now)
        self._next = at + self.interval


class Bind:
    def __init__(
        self,
        name: str,
        config: BindConfig,
        on_deliver: Callable[[Bind, int, int, bytes], None],
    ) -> None:
        self.name = name
        self.config = config
        self.on_deliver = on_deliver
        self.rate = RateLimit(config.rate)
        self._sock: socket.socket | None = None
        self._generation = 0  # counts connections: an answer on an old one is not ours
        self._sequences = itertools.count(0)  # next() is atomic: sender and reader share it
        self._pending: dict[int, Pending] = {}
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._throttled_until = 0.0
        self._throttle = config.throttle_seconds
        self._reader: threading.Thread | None = None
        self._unbound = threading.Event()
        # submit_sm queued by the sender, not yet written, and the connection they are for
        self._out: list[bytes] = []
        self._out_pendings: list[Pending] = []
        self._out_sock: socket.socket | None = None

    # state -------------------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self._sock is not None and time.monotonic() >= self._throttled_until

    def start(self) -> None:
        """Bind once now (bad credentials raise ``TransportError``), then keep bound."""
        try:
            self._connect()
        except OSError as exc:
            log.warning("smpp %s: cannot connect (%s); retrying in the background", self.name, exc)
        self._reader = threading.Thread(target=self._run, name=f"smpp-{self.name}", daemon=True)
        self._reader.start()

    def close(self, timeout: float = 2.0) -> None:
        self._closed = True
        sock = self._sock
        if sock is not None:
            try:
                self._write(pdus.header_only(pdus.UNBIND, self._next_sequence()))
                self._unbound.wait(timeout)
            except OSError:
                pass
            self._drop(sock, "closed")
        if self._reader is not None:
            self._reader.join(timeout)

    # sending -----------------------------------------------------------------------------------
    def _next_sequence(self) -> int:
        return next(self._sequences) % 0x7FFFFFFF + 1

    @property
    def generation(self) -> int:
        """Which connection this is; answers to PDUs of an earlier one are not sent."""
        return self._generation

    def submit(self, build: Callable[[int], bytes], waiter: Countdown) -> Pending | None:
        """Queue one submit_sm once the window and the rate allow; None when it cannot be sent
        (not connected, throttled). Queued PDUs are written together by ``flush`` (one write,
        one read at the SMSC, one wake-up of the reader for its answers), at the latest when
        the window is full; with a rate limit each is written at its time."""
        cfg = self.config
        with self._cond:
            full = self.usable and len(self._pending) >= cfg.window
        if full:
            self.flush()
            self._room(cfg.response_seconds)
        self.rate.acquire()
        with self._cond:
            sock = self._sock
            if sock is None or not self.usable:
                return None
            sequence = self._next_sequence()
            pending = Pending(waiter)
            waiter.add()
            self._pending[sequence] = pending
        if self._out_sock is not sock:
            self.flush()
            self._out_sock = sock
        self._out.append(build(sequence))
        self._out_pendings.append(pending)
        if self.rate.interval:
            self.flush()
        return pending

    def _room(self, timeout: float) -> None:
        """Wait until the window has room. Its answers overdue (an SMSC that stopped answering
        but still answers enquire_link), the connection is renewed: what was in flight comes
        back in doubt, and nothing more is written on it."""
        with self._cond:
            sock, deadline = self._sock, time.monotonic() + timeout
            while self.usable and len(self._pending) >= self.config.window:
                if (left := deadline - time.monotonic()) <= 0:
                    break
                self._cond.wait(left)
            else:
                return
        if sock is not None:
            self._drop(sock, "submit_sm_resp overdue")

    def flush(self) -> None:
        """Write the queued submit_sm, if their connection is still the current one (else they
        were never sent: ``_drop`` has already failed them)."""
        if not self._out:
            return
        data, pendings, sock = b"".join(self._out), self._out_pendings, self._out_sock
        self._out, self._out_pendings = [], []
        if sock is None or sock is not self._sock:
            return
        for pending in pendings:
            pending.written = True  # from here a lost answer leaves it in doubt
        try:
            self._write(data, sock)
        except OSError as exc:
            self._drop(sock, f"write failed: {exc}")

    def reply(self, data: bytes, generation: int | None = None) -> None:
        """Write answers on the connection ``generation`` (default: the current one); answers
        to a connection since lost are dropped: the SMSC delivers those PDUs again."""
        if generation is not None and generation != self._generation:
            return
        try:
            self._write(data)
        except OSError as exc:
            log.info("smpp %s: answer not written (%s)", self.name, exc)

    def _write(self, data: bytes, sock: socket.socket | None = None) -> None:
        sock = sock or self._sock
        if sock is None:
            raise OSError("not connected")
        with self._write_lock:
            sock.sendall(data)

    def expire(self, pendings: list[Pending]) -> None:
        """Answers overdue: the connection is renewed, so they come back in doubt."""
        sock = self._sock
        if sock is not None and any(p.status is None and not p.lost for p in pendings):
            self._drop(sock, "submit_sm_resp overdue")

    # connection --------------------------------------------------------------------------------
    def _connect(self) -> None:
        cfg = self.config
        raw = socket.create_connection((cfg.host, cfg.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket = raw
        try:
            if cfg.tls is not None:
                sock = cfg.tls.wrap_socket(raw, server_hostname=cfg.host)
            sequence = self._next_sequence()
            sock.sendall(
                pdus.bind_transceiver(sequence, cfg.system_id, cfg.password, cfg.system_type)
            )
            frames = pdus.Frames()
            while True:
                data = sock.recv(4096)
                if not data:
                    raise OSError("connection closed during bind")
                answers = [f for f in frames.feed(data) if f[0] == pdus.BIND_TRANSCEIVER_RESP]
                if answers:
                    break
            status = answers[0][1]
        except BaseException:
            sock.close()
            raise
        if status != pdus.ROK:
            sock.close()
            if status in pdus.AUTH_FAILURES:
                raise TransportError(f"SMPP bind refused: status 0x{status:08X}")
            raise OSError(f"SMPP bind refused: status 0x{status:08X}")
        sock.settimeout(cfg.enquire_link_seconds)
        self._frames = frames
        with self._cond:
            self._generation += 1
            self._sock = sock
            self._unbound.clear()
            self._cond.notify_all()
        log.info("smpp %s: bound to %s:%d", self.name, cfg.host, cfg.port)

    def _drop(self, sock: socket.socket, reason: str) -> None:
        """Close this connection; everything in flight on it is lost (in doubt)."""
        with self._cond:
            if self._sock is not sock:
                return
            self._sock = None
            lost, self._pending = self._pending, {}
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        for pending in lost.values():
            pending.lost = True
            pending.waiter.tick()
        if not self._closed:
            log.warning("smpp %s: connection lost (%s); %d in flight", self.name, reason, len(lost))

    def _run(self) -> None:
        delay = RECONNECT_FIRST
        while not self._closed:
            sock = self._sock
            if sock is None:
                try:
                    self._connect()
                    delay = RECONNECT_FIRST
                except (OSError, TransportError) as exc:
                    log.warning(
                        "smpp %s: bind failed (%s); next try in %.1fs", self.name, exc, delay
                    )
                    time.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                continue
            self._read(sock)

    def _read(self, sock: socket.socket) -> None:
        """Serve one connection until it is lost."""
        waiting_link = False
        while not self._closed and self._sock is sock:
            try:
                data = sock.recv(262144)
            except TimeoutError:
                if waiting_link:
                    self._drop(sock, "no answer to enquire_link")
                    return
                waiting_link = True
                self.reply(pdus.header_only(pdus.ENQUIRE_LINK, self._next_sequence()))
                continue
            except (OSError, ValueError) as exc:
                self._drop(sock, str(exc))
                return
            if not data:
                self._drop(sock, "closed by the SMSC")
                return
            waiting_link = False
            try:
                frames = self._frames.feed(data)
            except ValueError as exc:
                self._drop(sock, str(exc))
                return
            for command, status, sequence, body in frames:
                self._handle(sock, command, status, sequence, body)

    def _handle(
        self, sock: socket.socket, command: int, status: int, seq: int, body: bytes
    ) -> None:
        if command == pdus.SUBMIT_SM_RESP:
            self._answered(seq, status, body)
        elif command == pdus.DELIVER_SM:
            self.on_deliver(self, self._generation, seq, body)
        elif command == pdus.ENQUIRE_LINK:
            self.reply(pdus.header_only(pdus.ENQUIRE_LINK_RESP, seq))
        elif command == pdus.UNBIND:
            self.reply(pdus.header_only(pdus.UNBIND_RESP, seq))
            self._drop(sock, "unbound by the SMSC")
        elif command == pdus.UNBIND_RESP:
            self._unbound.set()
        elif command == pdus.GENERIC_NACK:
            self._answered(seq, status or pdus.RINVCMDID, b"")
        elif not command & 0x80000000:  # a request we do not serve
            self.reply(pdus.header_only(pdus.GENERIC_NACK, seq, pdus.RINVCMDID))

    def _answered(self, sequence: int, status: int, body: bytes) -> None:
        with self._cond:
            pending = self._pending.pop(sequence, None)
            if pending is None:
                return
            self._cond.notify()
            if status in pdus.BUSY:
                now = time.monotonic()
                if now >= self._throttled_until:
                    self._throttled_until = now + self._throttle
                    log.warning("smpp %s: throttled; backing off %.1fs", self.name, self._throttle)
                    self._throttle = min(self._throttle * 2, THROTTLE_MAX)
            elif status == pdus.ROK:
                self._throttle = self.config.throttle_seconds
        pending.status = status
        if status == pdus.ROK:
            pending.message_id = pdus.c_string(body)
        pending.waiter.tick()
