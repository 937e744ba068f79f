"""Exactly once across crashes: ``tilfreds worker`` processes killed with SIGKILL mid-work on
PostgreSQL lose nothing, and through the dev transport (which keys its inbox on our message
reference) send nothing twice; only messages in flight at a kill are ever in doubt (P3)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from tests.worker_processes import queue_invitations, worker_env
from tilfreds.invitations.models import Message
from tilfreds.runtime import Runtime
from tilfreds.sms.dev import DevPhoneMessage

N = 2000
KILLS = 10
WINDOW = 20
LEASE = 2


def test_ten_sigkills_lose_nothing_and_send_nothing_twice(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("worker processes beside each other need PostgreSQL")
    queue_invitations(rt, N)
    env = worker_env(
        rt,
        worker_batch_size="50",
        worker_window=str(WINDOW),
        worker_lease_seconds=str(LEASE),
        worker_sweep_seconds="0.2",
        worker_poll_seconds="0.1",
    )
    rng = random.Random(2270)
    for _ in range(KILLS):
        worker = subprocess.Popen(
            [sys.executable, "-m", "tilfreds", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.2, 2.2))  # start-up takes about a second; then it sends
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(LEASE + 0.5)  # the last victim's lease runs out
    final = subprocess.run(
        [sys.executable, "-m", "tilfreds", "worker", "--drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert final.returncode == 0, final.stderr
    with rt.db.read_only() as session:
        on_phone, distinct = session.execute(
            select(func.count(), func.count(func.distinct(DevPhoneMessage.reference)))
        ).one()
        by_status = dict(
            session.execute(
                select(Message.status, func.count())
                .where(Message.purpose == "invitation")  # the sweep queued reminders too
                .group_by(Message.status)
            ).all()
        )
        in_doubt = session.execute(
            select(func.count()).where(
                Message.last_error == "its worker stopped while it was in flight"
            )
        ).scalar_one()
    assert by_status == {"submitted": N}  # none lost
    assert (on_phone, distinct) == (N, N)  # none twice
    assert in_doubt <= KILLS * WINDOW  # at most the window in flight at each kill
    print(f"\n{KILLS} kills: {in_doubt} messages were in doubt, 0 duplicates, 0 lost")
