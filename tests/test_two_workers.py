"""Two ``tilfreds worker`` processes on one PostgreSQL database never send a message twice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from tests.factories import interaction_in
from tilfreds.invitations.intake import receive_interaction
from tilfreds.invitations.models import Message
from tilfreds.runtime import Runtime
from tilfreds.sms.dev import DevPhoneMessage

N = 2000


def test_two_worker_processes_send_2000_due_messages_exactly_once(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("several worker processes need PostgreSQL's row locks; SQLite runs one")
    now = rt.clock.now()
    with rt.db.unit_of_work() as session:
        for n in range(N):
            receive_interaction(
                session, rt.keys, interaction_in(n), timing=rt.timing(), now=now, actor="test"
            )
    env = {
        **os.environ,
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": rt.settings.secret_key,
        "TILFREDS_PUBLIC_URL": "https://survey.example.no",
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
        "TILFREDS_WORKER_BATCH_SIZE": "25",
    }
    cmd = [sys.executable, "-m", "tilfreds", "worker", "--drain"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with rt.db.read_only() as session:
        delivered = session.execute(
            select(func.count(), func.count(func.distinct(DevPhoneMessage.reference)))
        ).one()
        by_status = dict(
            session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
        )
        workers = session.execute(
            select(func.count(func.distinct(Message.claimed_by)))
        ).scalar_one()
    assert tuple(delivered) == (N, N)  # every message on the phone, none twice
    assert by_status == {"submitted": N}
    assert workers == 2  # both processes really took part
