"""SMS dispatch over SMPP (issue 6): N due messages on PostgreSQL sent by ``Worker(rt).drain()``
through the SMPP transport to the SMSC simulator (tests/peers/smsc.py, its own process) with
delivery receipts on, until every message is ``delivered`` in the database; against the limit,
a raw smpplib loop (its Client, TCP_NODELAY, the same window, receipts answered) to the same
simulator in the same run, alternating. Also the per-bind rate limit: submit_sm/s over a span
with ``TILFREDS_SMPP_RATE`` set, against the configured rate. Measures; renders its section."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import smpplib.client
import smpplib.consts
from sqlalchemy import delete, func, select

from bench.common import PUBLIC_URL, ROOT, SECRET, bench_keys, fresh_database, md_table, progress
from bench.send_worker import enqueue, requeue
from tilfreds.clock import SystemClock
from tilfreds.config import Settings
from tilfreds.db import Database
from tilfreds.invitations.models import Message, MessagePart
from tilfreds.invitations.states import MessageStatus
from tilfreds.runtime import Runtime
from tilfreds.sms.smpp import build
from tilfreds.sms.transport import OutboundSms, Submitted
from tilfreds.worker import Worker

RATE_TARGET = 0.6  # tilfreds end to end over the raw loop, at least
ABSOLUTE_TARGET = 1500.0  # messages/s end to end, at least
RATE_TOLERANCE = 0.05  # the per-bind rate limit, within
SYSTEM_ID, PASSWORD = "bench", "bench"
TEXT = "Hei Kari! Hvordan var samtalen med oss i dag? Svar 1-5. https://survey.example.no/s/Ab3dEf"


@dataclass(frozen=True)
class DispatchResult:
    messages: int
    window: int
    repeat: int
    tilfreds_runs: tuple[float, ...]  # seconds until all delivered in the database
    submit_runs: tuple[float, ...]  # seconds until the worker's drain returned (all submitted)
    cpu_runs: tuple[float, ...]  # CPU seconds of the worker's process (all its threads) a run
    raw_runs: tuple[float, ...]  # seconds until all submit_sm_resp and receipts came
    receipts_recorded: int  # messages delivered in the database after the last run
    rate_configured: float
    rate_seconds: float
    rate_sent: int

    @property
    def tilfreds_rate(self) -> float:
        return self.messages / statistics.median(self.tilfreds_runs)

    @property
    def raw_rate(self) -> float:
        return self.messages / statistics.median(self.raw_runs)

    @property
    def ratio(self) -> float:
        return statistics.median(
            r / t for t, r in zip(self.tilfreds_runs, self.raw_runs, strict=True)
        )

    @property
    def rate_measured(self) -> float:
        return self.rate_sent / self.rate_seconds

    @property
    def rate_error(self) -> float:
        return abs(self.rate_measured - self.rate_configured) / self.rate_configured


class Simulator:
    """The SMSC simulator in a child process, recording nothing (it is the far end, not a test)."""

    def __init__(self, port: int) -> None:
        self.port = port
        cmd = [sys.executable, "-m", "tests.peers.smsc", "--port", str(port), "--no-record"]
        cmd += ["--user", f"{SYSTEM_ID}:{PASSWORD}"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening" not in line:
            self.proc.kill()
            raise RuntimeError(f"the SMSC simulator did not start: {line!r}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def smpp_settings(port: int, window: int, **more: Any) -> dict[str, Any]:
    return {
        "smpp_port": port,
        "smpp_system_id": SYSTEM_ID,
        "smpp_password": PASSWORD,
        "smpp_window": window,
        "smpp_provider_name": "SMSC simulator (benchmark)",
        "smpp_provider_country": "NO",
    } | more


def raw_loop(port: int, *, messages: int, window: int) -> float:
    """The limit: smpplib's own Client, TCP_NODELAY, ``window`` submit_sm in flight, receipts
    requested and answered; seconds until every answer and every receipt came."""
    client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True)
    answered = receipts = 0

    def sent(pdu: object) -> None:
        nonlocal answered
        answered += 1

    def received(pdu: object) -> int:
        nonlocal receipts
        receipts += 1
        return int(smpplib.consts.SMPP_ESME_ROK)

    client.set_message_sent_handler(sent)
    client.set_message_received_handler(received)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
    body = TEXT.encode("ascii")
    t0 = time.perf_counter()
    written = 0
    while answered < messages or receipts < messages:
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"raw loop: {answered} answers, {receipts} receipts")
        while written < messages and written - answered < window:
            client.send_message(
                source_addr_ton=0,
                source_addr_npi=1,
                source_addr="2270",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=f"47{41000000 + written}",
                short_message=body,
                data_coding=0,
                registered_delivery=1,
            )
            written += 1
        client.read_once()
    seconds = time.perf_counter() - t0
    client.unbind()
    client.disconnect()
    return seconds


def reset(db: Database) -> None:
    """Forget the last run's provider ids and receipts, then queue every message again."""
    with db.unit_of_work() as session:
        session.execute(delete(MessagePart))
    requeue(db)


def _count(db: Database, status: MessageStatus) -> int:
    with db.read_only() as session:
        return int(
            session.execute(
                select(func.count()).select_from(Message).where(Message.status == status)
            ).scalar_one()
        )


def rate_limit(port: int, *, rate: float, seconds: float, window: int) -> tuple[float, int]:
    """Submit through one bind limited to ``rate``/s for about ``seconds``: (elapsed, sent)."""
    transport = build(Settings(**smpp_settings(port, window, smpp_rate=rate)))

    class Discard:
        def receipts(self, receipts: object) -> None: ...

        def inbound(self, messages: object) -> None: ...

    transport.start(Discard())
    # two seconds' worth a window: the pause between two windows (waiting for the last answers)
    # is the worker's, not the limiter's, and should not dilute the rate measured
    size = max(window, int(rate * 2))
    batch = [OutboundSms(f"+47{41000000 + i}", TEXT, "2270", str(i)) for i in range(size)]
    try:
        transport.send_window(batch[:1])  # the first token: the span starts here
        sent, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sent += sum(isinstance(o, Submitted) for o in transport.send_window(batch))
        return time.perf_counter() - t0, sent
    finally:
        transport.close()


def run(
    *, pg_url: str, workdir: Path, messages: int, window: int, repeat: int, port: int,
    rate: float, rate_seconds: float,
) -> DispatchResult:  # fmt: skip
    smsc = Simulator(port)
    db = fresh_database("postgresql", workdir=workdir, pg_url=pg_url, name="sms")
    tilfreds_runs: list[float] = []
    cpu_runs: list[float] = []
    submit_runs: list[float] = []
    raw_runs: list[float] = []
    try:
        settings = Settings(
            **smpp_settings(port, window),
            data_dir=workdir,
            database_url=db.url,
            secret_key=SECRET,
            public_url=PUBLIC_URL,
            send_windows=False,  # measured at any hour: at night every message would wait
        )
        transport = build(settings)
        rt = Runtime(
            settings=settings, db=db, keys=bench_keys(), clock=SystemClock(), transport=transport
        )
        enqueue(rt, messages)
        reset(db)
        with progress() as bar:
            for n in range(1, repeat + 1):
                task = bar.add_task(f"worker over SMPP {n}/{repeat}", total=messages)
                t0, cpu0 = time.perf_counter(), time.process_time()
                Worker(rt).drain()
                submit_runs.append(time.perf_counter() - t0)
                while (delivered := _count(db, MessageStatus.DELIVERED)) < messages:
                    bar.update(task, completed=delivered)
                    if time.perf_counter() - t0 > 600:
                        raise RuntimeError(f"only {delivered} of {messages} receipts recorded")
                    time.sleep(0.005)
                tilfreds_runs.append(time.perf_counter() - t0)
                cpu_runs.append(time.process_time() - cpu0)
                bar.update(task, completed=messages)
                recorded = delivered
                if n < repeat:
                    reset(db)
                task = bar.add_task(f"raw smpplib loop {n}/{repeat}", total=messages)
                raw_runs.append(raw_loop(port, messages=messages, window=window))
                bar.update(task, completed=messages)
        transport.close()
        task_seconds, sent = rate_limit(port, rate=rate, seconds=rate_seconds, window=window)
    finally:
        db.dispose()
        smsc.stop()
    return DispatchResult(
        messages=messages,
        window=window,
        repeat=repeat,
        tilfreds_runs=tuple(tilfreds_runs),
        submit_runs=tuple(submit_runs),
        cpu_runs=tuple(cpu_runs),
        raw_runs=tuple(raw_runs),
        receipts_recorded=recorded,
        rate_configured=rate,
        rate_seconds=task_seconds,
        rate_sent=sent,
    )


# --- report ----------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**miss**"


def target_rows(r: DispatchResult | None) -> list[list[str]]:
    if r is None:
        return []
    return [
        [
            f"6. SMS dispatch over SMPP, {r.messages:,} messages, PostgreSQL, receipts recorded: "
            "msg/s over the raw smpplib loop's",
            f"{r.ratio:.3f}× (median of {r.repeat}); {r.tilfreds_rate:,.0f} msg/s end to end",
            f"≥ {RATE_TARGET}× and ≥ {ABSOLUTE_TARGET:,.0f} msg/s",
            _verdict(r.ratio >= RATE_TARGET and r.tilfreds_rate >= ABSOLUTE_TARGET),
        ],
        [
            f"7. SMPP rate limit of {r.rate_configured:g}/s on one bind over "
            f"{r.rate_seconds:.0f} s",
            f"{r.rate_measured:.1f}/s ({r.rate_error * 100:.2f} % off)",
            f"within {RATE_TOLERANCE * 100:g} %",
            _verdict(r.rate_error <= RATE_TOLERANCE),
        ],
    ]


def section(r: DispatchResult | None) -> list[str]:
    out = ["## 6. SMS dispatch over SMPP (PostgreSQL)", ""]
    if r is None:
        return [*out, "Not run (it needs PostgreSQL; `--only sms_dispatch`).", ""]
    runs = ", ".join(f"{t:.2f}" for t in r.tilfreds_runs)
    raws = ", ".join(f"{t:.2f}" for t in r.raw_runs)
    subs = ", ".join(f"{t:.2f}" for t in r.submit_runs)
    cpus = ", ".join(f"{c / r.messages * 1e6:.0f}" for c in r.cpu_runs)
    out += [
        f"{r.messages:,} due messages (made by the real intake) drained by `Worker(rt).drain()` "
        "(its defaults: batches of 500, windows of 50, the next handed over before the last "
        "is answered) "
        f"through the SMPP transport (one transceiver bind, window {r.window}, TCP_NODELAY) to "
        "the SMSC simulator (`tests/peers/smsc.py`, its own process) which answers each "
        "submit_sm and sends a delivery receipt; a run ends when every message is `delivered` "
        "in the database. The limit: smpplib's own `Client` in a loop on one thread "
        f"(TCP_NODELAY, {r.window} in flight, receipts requested and answered), ending when "
        "every answer and receipt came; the two alternate on the same simulator.",
        "",
        *md_table(
            ["", "seconds per run", "msg/s (median)"],
            [
                ["tilfreds, all delivered in the DB", runs, f"{r.tilfreds_rate:,.0f}"],
                ["tilfreds, drain returned (all submitted)", subs, "—"],
                ["tilfreds, worker process CPU µs a message (all threads)", cpus, "—"],
                ["raw smpplib loop", raws, f"{r.raw_rate:,.0f}"],
            ],
        ),
        "",
        f"Delivered in the database after the last run: {r.receipts_recorded:,} of "
        f"{r.messages:,}. Rate limit: {r.rate_sent:,} submit_sm in {r.rate_seconds:.1f} s with "
        f"`TILFREDS_SMPP_RATE={r.rate_configured:g}` = {r.rate_measured:.1f}/s.",
        "",
        "Where the time goes (smppfast, 10,000-message runs, the worker's statements timed by "
        "SQLAlchemy events, load 0.5-1): the worker hands the transport window n+1 (50 "
        "messages) before window n's answers are in, so the bind's 50 in flight do not drain "
        "between windows, and one transaction a window records window n's outcomes and marks "
        "window n+2 in flight, which is handed over once it commits. That transaction is the "
        "critical path: about 8 ms a window (BEGIN, the invitations' update, the parts' upsert, "
        "one update submitting window n and starting window n+2, COMMIT), mostly round-trip "
        "latency (the same 50-row update runs in about 0.6 ms in the server), while 50 messages "
        "take about 5.5 ms on the raw loop's wire. With `TILFREDS_WORKER_WINDOW` messages in the "
        "pipeline, each in flight for two windows' wire time plus that transaction, msg/s is at "
        "most WORKER_WINDOW / (2 x 5.5 ms + 8 ms), about 5,000 here, less the pause while each "
        "batch of 500 is taken and prepared (about 25 ms, nothing on the wire). The receipts are "
        "written beside it on their own connection (on the machine's other core). The worker "
        "process spends 110-130 us of CPU a message (all threads).",
        "",
    ]
    return out
