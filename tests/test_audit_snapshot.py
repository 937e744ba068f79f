"""``tilfreds audit verify`` reads one snapshot: entries committed while it runs are never taken
for tampering (on PostgreSQL, where each statement would otherwise see newer commits)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.test_audit import verify_cli
from tilfreds.audit import service as audit
from tilfreds.runtime import Runtime

APPENDERS = 4
VERIFY_RUNS = 25


def test_p12_verify_while_others_append_never_raises_a_false_alarm(rt: Runtime) -> None:
    stop = threading.Event()

    def append(n: int) -> int:
        done = 0
        while not stop.is_set():
            with rt.db.unit_of_work() as session:
                for i in range(1 + done % 3):
                    audit.record(
                        session,
                        actor="system",
                        action="thing.done",
                        subject_type="thing",
                        subject_id=f"{n}-{done}-{i}",
                        at=rt.clock.now(),
                    )
            done += 1
        return done

    with ThreadPoolExecutor(max_workers=APPENDERS) as pool:
        appenders = [pool.submit(append, n) for n in range(APPENDERS)]
        try:
            outcomes = [verify_cli(rt) for _ in range(VERIFY_RUNS)]
        finally:
            stop.set()
        appended = sum(f.result(timeout=60) for f in appenders)
    alarms = [output for code, output in outcomes if code != 0]
    assert alarms == []
    assert appended > VERIFY_RUNS  # the log really grew while it was verified
    assert verify_cli(rt)[0] == 0
