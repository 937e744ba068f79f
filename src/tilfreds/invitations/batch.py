"""One intake call's rows, one or ten thousand, through three set-based steps: one read gathers
every row's facts, eligibility decides each row, then each table gets one insert for the whole
call (``intake_sql``). Rows of one call that share a person: one invitation within the fatigue
window, for the interaction that happened first. Keeps P7 (an objector is never registered
again), P9/P10 (a skipped interaction keeps no person, reason text or case reference) and P19.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, context
from tilfreds.invitations import intake_pg
from tilfreds.invitations import intake_sql as sql
from tilfreds.invitations.eligibility import (
    IntakeFacts,
    Later,
    Rules,
    Skip,
    at_intake,
    for_survey,
)
from tilfreds.invitations.intake_types import (
    Intake,
    InteractionIn,
    InvitationRef,
    Refused,
    Timing,
    new_codes,
)
from tilfreds.invitations.schedule import next_opening, place_for, zone_named
from tilfreds.invitations.states import InvitationStatus

_INTERACTION_FIELDS = ["channel", "reason", "case_ref", "occurred_at"]
_PERSON_FIELDS = ["name", "phone", "locale"]


def receive_interactions(
    session: Session,
    keys: Keys,
    rows: Sequence[InteractionIn],
    *,
    timing: Timing,
    now: datetime,
    actor: str,
    audit_each: bool = True,
    writes_last: bool = False,
) -> list[Intake | Refused]:
    """Receive a batch: for each row (in order) what became of it. A row seen before, here or
    earlier, changes nothing. With ``audit_each`` false the batch writes one audit entry. With
    ``writes_last`` the caller commits right after and writes nothing more in the transaction,
    so on PostgreSQL the audit head is locked along with the intake's writes (one wait less)."""
    batch = _Batch(keys, rows, timing=timing, now=now)
    if batch.todo:
        batch.facts = sql.read_facts(
            session,
            external_ids=[rows[p].external_id for p in batch.todo],
            indexes=batch.all_indexes(),
        )
        if since := batch.quota_since():
            batch.facts.quota_used = sql.invitations_since(session, since)
        batch.decide()
        batch.write(session, actor=actor, audit_each=audit_each, writes_last=writes_last)
    return batch.results()


class _Batch:
    """One call's rows through their three steps: read, decide, write."""

    def __init__(
        self, keys: Keys, rows: Sequence[InteractionIn], *, timing: Timing, now: datetime
    ) -> None:
        self.keys, self.rows, self.timing, self.now = keys, rows, timing, now
        self.rules = timing.rules()
        self.out: list[Intake | Refused | None] = [None] * len(rows)
        self.first: dict[str, int] = {}  # external_id -> position of its first taken row
        self.todo: list[int] = []
        for pos, row in enumerate(rows):
            if row.occurred_at > now + timing.skew:
                self.out[pos] = Refused("occurred_at", "occurred_at is in the future")
            elif row.external_id not in self.first:
                self.first[row.external_id] = pos
                self.todo.append(pos)
        self.indexes = {
            phone: keys.blind_indexes(phone) for phone in {rows[p].phone_e164 for p in self.todo}
        }
        self.facts = sql.Facts()
        self.scheduled: list[dict[str, Any]] = []  # rows for sql.record, surveyed or skipped
        self.position: dict[str, int] = {}  # external_id -> position, for what is written
        self.register: dict[str, int] = {}  # phone index -> position of a row that needs it
        self.carry: set[str] = set()  # objections known only under a previous key

    def all_indexes(self) -> list[str]:
        return [index for indexes in self.indexes.values() for index in indexes]

    def quota_since(self) -> datetime | None:
        """The start of today (UTC), if a daily quota applies to any survey."""
        quotas = [q for q, _ in self.facts.overrides.values()] + [self.rules.daily_quota]
        if all(q is None for q in quotas):
            return None
        return self.now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def rules_for(self, survey_id: int) -> Rules:
        quota, rate = self.facts.overrides.get(survey_id, (None, None))
        if quota is None and rate is None:
            return self.rules
        return for_survey(self.rules, daily_quota=quota, sampling_rate=rate)

    def send_after(self, row: InteractionIn, earliest: datetime) -> datetime:
        """The first moment in the recipient's send window from ``earliest`` (P2: a decent hour
        in their own time zone), spread by the interaction so an opening has no spike."""
        window = self.timing.window
        if window is None or not window.enabled:
            return earliest
        zone, country = row.place or place_for(row.phone_e164)
        return next_opening(
            earliest,
            zone=zone_named(zone),
            country=country,
            window=window,
            spread_key=row.external_id,
        )

    def decide(self) -> None:
        """Eligibility for every new row, in the order the interactions happened: a person in
        several rows is asked once within the fatigue window, about the first."""
        facts, now = self.facts, self.now
        last: dict[str, datetime | None] = {}  # current phone index -> last invitation
        used = dict(facts.quota_used)
        codes = iter(new_codes(len(self.todo)))  # one read of the random source for all
        for pos in sorted(self.todo, key=lambda p: self.rows[p].occurred_at):
            row = self.rows[pos]
            if row.external_id in facts.existing:
                continue
            survey_id = facts.surveys.get(row.survey) if row.survey else facts.default_survey
            if survey_id is None:
                self.out[pos] = Refused(
                    "survey",
                    "no survey with that slug" if row.survey else "no default survey is set up",
                    code="not_found",
                )
                continue
            indexes = self.indexes[row.phone_e164]
            current = indexes[0]
            known = next((facts.people[i] for i in indexes if i in facts.people), None)
            if current not in last:
                last[current] = known[1] if known else None
            objected = any(i in facts.suppressed for i in indexes)
            decision = at_intake(
                IntakeFacts(
                    objected=objected,
                    restricted=bool(known and known[2]),
                    wrong_number=any(i in facts.wrong_numbers for i in indexes),
                    flags=row.flags,
                    last_surveyed_at=last[current],
                    occurred_at=row.occurred_at,
                    sample_key=row.external_id,
                    quota_used=used.get(survey_id, 0),
                ),
                self.rules_for(survey_id),
                now=now,
            )
            if objected and current not in facts.suppressed:
                self.carry.add(current)
            self.position[row.external_id] = pos
            if isinstance(decision, Skip):
                self.scheduled.append(_skipped(row, survey_id, decision.reasons))
                continue
            last[current] = now
            used[survey_id] = used.get(survey_id, 0) + 1
            if known is None:
                self.register.setdefault(current, pos)
            # a flag's delay, like the normal one, lands on the recipient's next opening, so the
            # stored send_after says when the SMS will really go (the worker checks again)
            earliest = decision.until if isinstance(decision, Later) else now + self.timing.delay
            send_after = self.send_after(row, earliest)
            self.scheduled.append(
                _surveyed(row, known[0] if known else None, current, survey_id, send_after)
                | {"code": next(codes), "expires_at": now + self.timing.valid_for}
            )

    def write(self, session: Session, *, actor: str, audit_each: bool, writes_last: bool) -> None:
        now = self.now
        for index in sorted(self.carry):
            _carry_objection(session, index, now=now)
        people = self._new_people()
        if session.get_bind().dialect.name == "postgresql":
            # the head only for the outermost transaction (a savepoint's rollback would free it)
            # and with no ORM change left to flush at the commit, after it
            pending = session.new or session.dirty or session.deleted
            last = writes_last and not session.in_nested_transaction() and not pending
            registered, made = intake_pg.write(
                session, people, self.scheduled, now=now, lock_head=last
            )
        else:
            registered, made = sql.write(session, people, self.scheduled, now=now)
        lost = [r["external_id"] for r in self.scheduled if r["external_id"] not in made]
        if lost:  # concurrent deliveries took these external ids first
            # (with the audit head already held: reads, and deletes of people only this
            # transaction inserted, which no other transaction can hold or wait for)
            self.facts.existing.update(sql.by_external_id(session, lost))
            used = {registered.get(self._index_of(e)) for e in made}
            orphans = [pid for index, pid in registered.items() if pid not in used]
            if orphans:
                sql.forget_people(session, orphans)
                registered = {i: p for i, p in registered.items() if p not in set(orphans)}
        self._results_of(made)
        if self.facts.existing:
            self._earlier(session)
        if made:
            self._audit(session, made, registered, actor=actor, each=audit_each)

    def _index_of(self, external_id: str) -> str:
        return self.indexes[self.rows[self.position[external_id]].phone_e164][0]

    def _new_people(self) -> list[dict[str, Any]]:
        keys = self.keys
        new = []
        for index, pos in self.register.items():
            row = self.rows[pos]
            new.append(
                {
                    "phone_index": index,
                    "phone_cipher": keys.encrypt(
                        row.phone_e164, context=context("people", "phone", index)
                    ),
                    "name_cipher": keys.encrypt(
                        row.name.strip(), context=context("people", "name", index)
                    ),
                    "locale": row.locale,
                }
            )
        return new

    def _results_of(self, made: dict[str, tuple[int, int | None]]) -> None:
        by_id = {r["external_id"]: r for r in self.scheduled}
        for external_id, (interaction_id, invitation_id) in made.items():
            row = by_id[external_id]
            invitation = None
            if invitation_id is not None:
                invitation = InvitationRef(
                    id=invitation_id,
                    code=row["code"],
                    status=InvitationStatus.PENDING,
                    survey_id=row["survey_id"],
                    expires_at=row["expires_at"],
                )
            reasons = row["skip_reasons"]
            self.out[self.position[external_id]] = Intake(
                interaction_id=interaction_id,
                external_id=external_id,
                created=True,
                invitation=invitation,
                skip_reasons=tuple(reasons.split(",")) if reasons else (),
            )

    def _earlier(self, session: Session) -> None:
        """Rows delivered before (or by a concurrent call): what the first delivery made."""
        wanted = {
            self.facts.existing[self.rows[p].external_id]: p
            for p in self.todo
            if self.out[p] is None and self.rows[p].external_id in self.facts.existing
        }
        for iid, external_id, reasons, vid, code, status, survey_id, expires in sql.earlier(
            session, list(wanted)
        ):
            invitation = (
                InvitationRef(
                    id=vid, code=code, status=status, survey_id=survey_id, expires_at=expires
                )
                if vid is not None
                else None
            )
            self.out[wanted[iid]] = Intake(
                interaction_id=iid,
                external_id=external_id,
                created=False,
                invitation=invitation,
                skip_reasons=tuple(reasons.split(",")) if reasons else (),
            )

    def _audit(
        self,
        session: Session,
        made: dict[str, tuple[int, int | None]],
        registered: dict[str, int],
        *,
        actor: str,
        each: bool,
    ) -> None:
        if not each:  # a batch: one entry naming the range of interaction ids it created
            ids = [i for i, _ in made.values()]
            audit.record(
                session,
                actor=actor,
                action="interaction.batch_received",
                subject_type="interaction",
                subject_id=f"{min(ids)}-{max(ids)}",
                at=self.now,
                fields=_INTERACTION_FIELDS + (_PERSON_FIELDS if registered else []),
            )
            return
        for person_id in sorted(registered.values()):
            audit.record(
                session,
                actor="system",
                action="person.registered",
                subject_type="person",
                subject_id=person_id,
                at=self.now,
                fields=_PERSON_FIELDS,
            )
        for interaction_id, invitation_id in made.values():
            audit.record(
                session,
                actor=actor,
                action="interaction.received" if invitation_id else "interaction.skipped",
                subject_type="interaction",
                subject_id=interaction_id,
                at=self.now,
                fields=_INTERACTION_FIELDS if invitation_id else ["channel", "occurred_at"],
            )

    def results(self) -> list[Intake | Refused]:
        out: list[Intake | Refused] = []
        for pos, result in enumerate(self.out):
            if result is not None:
                out.append(result)
                continue
            first = self.out[self.first[self.rows[pos].external_id]]  # repeated in this batch
            assert first is not None
            out.append(first if isinstance(first, Refused) else _again(first))
        return out


def _again(first: Intake) -> Intake:
    return Intake(
        interaction_id=first.interaction_id,
        external_id=first.external_id,
        created=False,
        invitation=first.invitation,
        skip_reasons=first.skip_reasons,
    )


def _skipped(row: InteractionIn, survey_id: int, reasons: tuple[str, ...]) -> dict[str, Any]:
    """An interaction that is not surveyed: no person, no reason text, no case ref (P9); the
    survey it was meant for, so the funnel counts it there."""
    return {
        "external_id": row.external_id,
        "person_id": None,
        "phone_index": None,
        "channel": row.channel,
        "reason": "",
        "case_ref": "",
        "occurred_at": row.occurred_at,
        "skip_reasons": ",".join(reasons),
        "survey_id": survey_id,
        "code": None,
        "expires_at": None,
        "send_after": None,
    }


def _surveyed(
    row: InteractionIn, person_id: int | None, index: str, survey_id: int, send_after: datetime
) -> dict[str, Any]:
    return {
        "external_id": row.external_id,
        "person_id": person_id,
        "phone_index": index,
        "channel": row.channel,
        "reason": row.reason,
        "case_ref": row.case_ref,
        "occurred_at": row.occurred_at,
        "skip_reasons": None,
        "survey_id": survey_id,
        "send_after": send_after,
    }


def _carry_objection(session: Session, index: str, *, now: datetime) -> None:
    """The number objected under a previous key only (its objection outlived every record of the
    number, so a rotation could not move it): with the number in hand, record it under the current
    key too, so it keeps matching once the old key is dropped (P7)."""
    sql.insert_new_id(
        session,
        sql.suppressions,
        "phone_index",
        {"phone_index": index, "source": "rekeyed", "created_at": now},
    )
