"""``python -m bench.sms_http``: how fast the Sinch adapter hands windows of messages to its
emulator (run in its own process) with 1, 4 and 16 requests in flight, at a given answer latency
(0 ms, and 20 ms for a provider in another country). The figures explain ``in_flight``'s default
(one batch per message, several at once: docs/sms.md). Times the adapter only, no database."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from bench.common import ROOT
from tilfreds.sms.http import CallbackAuth
from tilfreds.sms.sinch import SinchTransport
from tilfreds.sms.transport import OutboundSms, Submitted

PORT = 27781
WINDOW = 50  # the worker's default window


@contextmanager
def emulator(latency: float) -> Iterator[str]:
    args = ["--port", str(PORT), "--latency", str(latency), "--no-reports"]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.sinch_emulator", *args], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{PORT}"
    finally:
        process.terminate()
        process.wait()


def rate(url: str, *, messages: int, in_flight: int) -> float:
    """Messages per second through ``send_window``, all taken."""
    transport = SinchTransport(
        base_url=url,
        service_plan_id="jd63jf88477ll123ab4567cd89012ef3",
        api_token="sinch-token",  # the emulator's
        receipt_url="http://127.0.0.1:9/sms/sinch/receipt/x",
        auth=CallbackAuth.checked("sinch", "b" * 40),
        in_flight=in_flight,
    )
    window = [
        OutboundSms(
            to=f"+47{40000000 + n}",
            body="Hei! Hvordan var samtalen? Svar 1-5",
            sender="2270",
            reference=str(n),
        )
        for n in range(WINDOW)
    ]
    transport.send_window(window[:1])  # connect before timing
    start = time.perf_counter()
    for _ in range(messages // WINDOW):
        outcomes = transport.send_window(window)
        failed = [o for o in outcomes if not isinstance(o, Submitted)]
        assert not failed, failed[:3]
    elapsed = time.perf_counter() - start
    transport.close()
    return (messages // WINDOW) * WINDOW / elapsed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sms_http", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args(argv)
    table = Table("answer latency", "in flight", "messages/s")
    for latency in (0.0, 0.02):
        with emulator(latency) as url:
            for in_flight in (1, 4, 16, 32):
                per_second = rate(url, messages=args.messages, in_flight=in_flight)
                table.add_row(f"{latency * 1000:.0f} ms", str(in_flight), f"{per_second:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
