"""Two ``tilfreds worker`` processes on one PostgreSQL database never send a message twice."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from tests.worker_processes import queue_invitations, worker_env
from tilfreds.invitations.models import Message
from tilfreds.invitations.states import MessagePurpose, MessageStatus
from tilfreds.runtime import Runtime
from tilfreds.sms.dev import DevPhoneMessage

N = 2000


def test_two_worker_processes_send_2000_due_messages_exactly_once(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("several worker processes need PostgreSQL's row locks; SQLite runs one")
    queue_invitations(rt, N)
    env = worker_env(rt, worker_batch_size="25")
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
            session.execute(
                select(Message.status, func.count())
                .where(Message.purpose == MessagePurpose.INVITATION)
                .group_by(Message.status)
            ).all()
        )
        # the worker's reminder sweep may have queued reminders for invitations already sent:
        # they wait for their hour and none of them was sent
        early_reminders = session.execute(
            select(func.count()).where(
                Message.purpose == MessagePurpose.REMINDER,
                Message.status != MessageStatus.QUEUED,
            )
        ).scalar_one()
        workers = session.execute(
            select(func.count(func.distinct(Message.claimed_by)))
        ).scalar_one()
    assert tuple(delivered) == (N, N)  # every message on the phone, none twice
    assert by_status == {"delivered": N}  # the dev phone reports each delivered
    assert early_reminders == 0
    assert workers == 2  # both processes really took part
