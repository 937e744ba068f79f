"""The send worker's housekeeping, run every ``worker_sweep_seconds`` between passes."""

from __future__ import annotations

import logging
from datetime import timedelta

from tilfreds.invitations import conversation, jobs, receipts, reminders
from tilfreds.invitations.service import expire_overdue
from tilfreds.runtime import Runtime

log = logging.getLogger("tilfreds.worker")  # the worker's messages, under its name
UNMATCHED_AFTER = timedelta(hours=1)  # receipts matching no message this long are reported


def sweep(rt: Runtime, *, resend_in_doubt: bool) -> None:
    """Housekeeping that needs no hurry: leases that ran out, invitations that expired, the
    reminders of invitations sent, receipts that match no message (reported, and deleted once
    kept ``unmatched_receipts_days``)."""
    s = rt.settings
    with rt.db.unit_of_work() as session:
        now = rt.clock.now()
        recovery = jobs.recover_expired_leases(session, now=now, resend_in_doubt=resend_in_doubt)
        expired = expire_overdue(session, now=now)
        reminders.queue_reminders(session, now=now)
        conversation.close_idle(session, idle=timedelta(hours=s.sms_reply_window_hours), now=now)
        stray = receipts.unmatched(  # those that became stray since the last sweep
            session,
            older_than=now - UNMATCHED_AFTER,
            newer_than=now - UNMATCHED_AFTER - timedelta(seconds=s.worker_sweep_seconds),
        )
        purged = receipts.purge_unmatched(
            session, older_than=now - timedelta(days=s.unmatched_receipts_days)
        )
    if recovery.in_doubt or recovery.failed:
        log.warning(
            "sweep: %d messages in doubt after a worker stopped, %d given up, %d requeued",
            recovery.in_doubt,
            recovery.failed,
            recovery.requeued,
        )
    if expired:  # routine: a link's validity ran out
        log.info("sweep: %d invitations expired", expired)
    if stray:
        log.warning(
            "%d more delivery receipts match no message after %s; kept in message_parts "
            "for reconciliation (docs/sms.md)",
            stray,
            UNMATCHED_AFTER,
        )
    if purged:
        log.warning(
            "sweep: deleted %d delivery receipts that matched no message for %g days "
            "(TILFREDS_UNMATCHED_RECEIPTS_DAYS)",
            purged,
            s.unmatched_receipts_days,
        )
