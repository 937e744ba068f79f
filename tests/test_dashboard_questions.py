"""The dashboard and the report API show every question of every survey through the kinds'
registry (P4: CSAT, NPS with its promoters, passives and detractors, CES, choices, consents),
each figure hidden with a reason while fewer than the minimum group have answered."""

from __future__ import annotations

import html
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import interaction_payload
from tests.test_surveys import EVERY_KIND, publish, survey_code_of
from tilfreds.runtime import Runtime

FORMS = [  # NPS: two promoters (10, 9), one passive (8), two detractors (3, 0)
    {"csat": "5", "nps": "10", "ces": "7", "channel": "web", "contact": "no"},
    {"csat": "4", "nps": "9", "ces": "6", "channel": "web", "contact": "no"},
    {"csat": "2", "nps": "3", "ces": "2", "channel": "phone", "contact": "no"},
    {"csat": "5", "nps": "8", "ces": "5", "channel": "web", "contact": "no"},
    {"csat": "1", "nps": "0", "ces": "1", "channel": "phone", "contact": "no"},
]


def answer(client: TestClient, rt: Runtime, n: int) -> None:
    customer = {"name": "Kari", "phone": f"+4741{n:06d}", "locale": "nb"}
    payload = interaction_payload(external_id=f"q{n}", customer=customer, survey="every-kind")
    assert client.post("/api/v1/interactions", json=payload).status_code == 201
    assert client.post(f"/s/{survey_code_of(rt)}", data=FORMS[n]).status_code == 303


def questions(client: TestClient) -> dict[str, Any]:
    summary = client.get("/api/v1/reports/summary").json()
    (survey,) = [s for s in summary["surveys"] if s["slug"] == "every-kind"]
    return {q["key"]: q for q in survey["questions"]}


def test_p4_dashboard_shows_nps_and_ces_per_question_hidden_below_the_minimum_group(
    client: TestClient, rt: Runtime
) -> None:
    publish(client, EVERY_KIND)
    for n in range(4):
        answer(client, rt, n)
    page = html.unescape(client.get("/dashboard").text)
    for key in ("csat", "nps", "ces", "channel"):
        assert f'data-testid="q-every-kind-{key}-hidden"' in page, key
        assert f'data-testid="q-every-kind-{key}-distribution"' not in page, key
    assert "(4 so far)" in page
    assert 'data-testid="q-every-kind-nps-score"' not in page
    hidden = questions(client)["nps"]
    assert hidden["answers"] == 4 and hidden["figures"]["bands"] is None

    answer(client, rt, 4)
    page = html.unescape(client.get("/dashboard").text)
    assert 'data-testid="q-every-kind-nps-hidden"' not in page
    assert 'data-testid="q-every-kind-nps-score">0.0<' in page
    assert "promoters 40 %" in page and "passives 20 %" in page and "detractors 40 %" in page
    assert 'data-testid="q-every-kind-ces-score">4.2<' in page
    assert 'data-testid="q-every-kind-csat-score">60 %<' in page
    assert 'data-testid="q-every-kind-channel-distribution"' in page
    assert "Counted only" in page  # the free text
    shown = questions(client)
    assert shown["nps"]["figures"]["bands"] == {
        "detractors": 0.4,
        "passives": 0.2,
        "promoters": 0.4,
    }
    assert shown["nps"]["score_label"].startswith("net promoter score")
    assert shown["csat"]["score_is_share"] is True
    ces = {"1": 1, "2": 1, "3": 0, "4": 0, "5": 1, "6": 1, "7": 1}  # JSON keys are strings
    assert shown["ces"]["figures"]["distribution"] == ces
