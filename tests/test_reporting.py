"""The summary counts what happened and hides scores of small groups (k-anonymity)."""

from __future__ import annotations

from tests.factories import interaction_in
from tilfreds.invitations.intake import receive_interaction
from tilfreds.reporting import service as reporting
from tilfreds.reporting.service import MIN_GROUP
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker


def answered(rt: Runtime, scores: list[int]) -> None:
    now = rt.clock.now()
    with rt.db.unit_of_work() as session:
        codes = [
            receive_interaction(
                session, rt.keys, interaction_in(n), timing=rt.timing(), now=now, actor="test"
            ).invitation.code
            for n in range(len(scores))
        ]
    Worker(rt).drain()
    with rt.db.unit_of_work() as session:
        for code, score in zip(codes, scores, strict=True):
            responses.submit(
                session, code=code, form={"csat": str(score), "contact": "no"}, now=now
            )


def test_scores_hidden_below_the_minimum_group(rt: Runtime) -> None:
    answered(rt, [5] * (MIN_GROUP - 1))
    with rt.db.read_only() as session:
        s = reporting.summary(session)
    assert s.responses == MIN_GROUP - 1 and s.csat.hidden and s.csat.average is None


def test_scores_shown_from_the_minimum_group(rt: Runtime) -> None:
    answered(rt, [1, 3, 4, 5, 5])
    with rt.db.read_only() as session:
        s = reporting.summary(session)
    assert not s.csat.hidden
    assert s.csat.average == 3.6 and s.csat.satisfied_share == 0.6
    assert s.csat.distribution == {1: 1, 2: 0, 3: 1, 4: 1, 5: 2}
    assert (s.invited, s.sent, s.responses, s.response_rate) == (5, 5, 5, 1.0)
