"""``tilfreds worker`` processes sending over SMPP (to the SMSC simulator, which answers each
submit after a short delay so that windows are really in flight) are killed with SIGKILL
mid-window, again and again, on PostgreSQL. Nothing is lost: every message ends submitted or
delivered, or ``in_doubt`` when it was in flight at a kill, and only those; no message that
tilfreds counts as sent is missing at the SMSC, none arrives twice (SMPP is not idempotent, so
messages in doubt are not resent), and the in-doubt ones are counted (P3)."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tests.peers.smsc import Faults, Smsc
from tests.worker_processes import queue_invitations, worker_env
from tilfreds.invitations.models import Invitation, Message
from tilfreds.runtime import Runtime

N = 500
KILLS = 6
WINDOW = 20
LEASE = 2
LINK_CODE = re.compile(r"/s/(\S+)")


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    server = Smsc(users={"tilfreds": "secret"}, faults=Faults(delay=0.05)).start()
    yield server
    server.stop()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p3_sigkill_mid_window_loses_nothing_and_only_in_flight_messages_are_in_doubt(
    rt: Runtime, smsc: Smsc
) -> None:
    queue_invitations(rt, N)
    env = worker_env(
        rt,
        sms_transport="smpp",
        smpp_host="127.0.0.1",
        smpp_port=str(smsc.port),
        smpp_system_id="tilfreds",
        smpp_password="secret",
        smpp_provider_name="Test SMSC",
        smpp_provider_country="NO",
        smpp_window=str(WINDOW),
        worker_batch_size="50",
        worker_window=str(WINDOW),
        worker_lease_seconds=str(LEASE),
        send_windows="off",  # on with a real transport: at night everything would wait
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
        before = smsc.submits
        smsc.wait_for(lambda: smsc.submits > before or worker.poll() is not None, timeout=20)
        time.sleep(rng.uniform(0.05, 0.4))  # it is sending: the kill lands mid-window
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
        # the invitations themselves; the sweep queues each sent one's reminder, days later
        inviting = Message.purpose == "invitation"
        rows = session.execute(
            select(Message.status, Invitation.code)
            .join(Invitation, Invitation.id == Message.invitation_id)
            .where(inviting)
        ).all()
        total = session.execute(
            select(func.count()).select_from(Message).where(inviting)
        ).scalar_one()
    by_status = Counter(str(status) for status, _ in rows)
    at_smsc = Counter(
        match.group(1).rstrip(".")
        for m in smsc.received
        if (match := LINK_CODE.search(m.text)) is not None
    )
    sent = {code for status, code in rows if status in ("submitted", "delivered")}
    in_doubt = {code for status, code in rows if status == "in_doubt"}
    assert total == N
    assert set(by_status) <= {"submitted", "delivered", "in_doubt"}, by_status  # none lost
    assert len(in_doubt) <= KILLS * WINDOW  # at most the window in flight at each kill
    assert all(at_smsc[code] == 1 for code in sent)  # what we count as sent arrived, once
    assert all(n == 1 for n in at_smsc.values())  # nothing twice, in doubt or not
    assert set(at_smsc) <= sent | in_doubt
    print(
        f"\n{KILLS} kills: {len(in_doubt)} messages in doubt "
        f"({sum(1 for c in in_doubt if c in at_smsc)} of them had reached the SMSC), "
        f"{len(sent)} sent once, 0 lost, 0 duplicates"
    )
