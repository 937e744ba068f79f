"""Reports never show a figure from answers about fewer than MIN_GROUP people (k-anonymity).

Every figure is checked through the API and on the dashboard, on SQLite and PostgreSQL, for
1..6 responses; the rule itself is in ``tilfreds/reporting/disclosure.py``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import interaction_payload
from tilfreds.reporting import disclosure
from tilfreds.reporting.disclosure import MIN_GROUP
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

SCORES = [1, 3, 4, 5, 5, 2, 4, 4, 5, 3]


def respond(client: TestClient, rt: Runtime, forms: list[dict[str, str]]) -> None:
    """One invitation per form, sent to the dev phone and answered through the survey page."""
    for i in range(len(forms)):
        customer = {
            "name": f"Person {chr(65 + i % 26)}",
            "phone": f"+47{41000000 + i}",
            "locale": "nb",
        }
        payload = interaction_payload(external_id=f"case-{i}", customer=customer)
        assert client.post("/api/v1/interactions", json=payload).status_code == 201
    Worker(rt).drain()
    outbox = client.get("/api/v1/dev/outbox").json()
    codes = [m.group(1) for msg in outbox if (m := re.search(r"/s/(\w+)", msg["text"]))]
    assert len(codes) == len(forms)
    for code, form in zip(codes, forms, strict=True):
        assert client.post(f"/s/{code}", data=form).status_code == 303


def answered(client: TestClient, rt: Runtime, n: int) -> list[int]:
    """``n`` responses, each with a score and permission to contact; returns the scores."""
    scores = SCORES[:n]
    respond(client, rt, [{"csat": str(s), "contact": "yes"} for s in scores])
    return scores


def dashboard_figure(client: TestClient, testid: str) -> str | None:
    """The text of the dashboard element ``data-testid=testid``, None if it is not there."""
    page = client.get("/dashboard")
    assert page.status_code == 200
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:span|strong|svg)>', page.text, re.S)
    if not found:
        return None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def _average(scores: list[int]) -> Any:
    return round(sum(scores) / len(scores), 2)


def _share(scores: list[int]) -> Any:
    return round(sum(s >= 4 for s in scores) / len(scores), 3)


def _distribution(scores: list[int]) -> Any:
    return {str(v): scores.count(v) for v in range(1, 6)}


# figure: (where it is in the API answer, its expected value from the scores, its dashboard id,
# how the dashboard shows the expected value)
FIGURES: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[list[int]], Any], str, Any]] = {
    "csat_average": (
        lambda s: s["csat"]["average"],
        _average,
        "csat-average",
        lambda v: f"{v:.2f}",
    ),
    "csat_satisfied_share": (
        lambda s: s["csat"]["satisfied_share"],
        _share,
        "csat-satisfied-share",
        lambda v: f"{v * 100:.0f} %",
    ),
    "csat_distribution": (
        lambda s: s["csat"]["distribution"],
        _distribution,
        "csat-distribution",
        lambda v: " ".join(f"{count} {score}" for score, count in v.items()),
    ),
    "contact_consents": (
        lambda s: s["contact_consents"],
        len,  # everyone in ``answered`` may be contacted: the rest of the group is empty
        "contact-consents",
        str,
    ),
}


@pytest.mark.parametrize("n", range(1, MIN_GROUP + 2))
@pytest.mark.parametrize("figure", FIGURES)
def test_each_figure_from_answers_is_hidden_below_the_minimum_group(
    client: TestClient, rt: Runtime, figure: str, n: int
) -> None:
    in_api, expected, testid, shown_as = FIGURES[figure]
    scores = answered(client, rt, n)
    summary = client.get("/api/v1/reports/summary").json()
    on_dashboard = dashboard_figure(client, testid)
    if n < MIN_GROUP:
        assert in_api(summary) is None
        assert on_dashboard in (None, "–")
    else:
        assert in_api(summary) == expected(scores)
        assert on_dashboard == shown_as(expected(scores))


PARTICIPATION = {"min_group", "invited", "sent", "responses", "response_rate", "csat.answers"}
# per survey and question: which survey, version and question, and how many answered it
DESCRIBES = ("slug", "name", "version", "responses", "key", "kind", "answers", "text")
DESCRIBES += ("score_label", "score_is_share")  # what the score is, the same for any answers


def participation(path: str) -> bool:
    return path in PARTICIPATION or (path.startswith("surveys.") and path.endswith(DESCRIBES))


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return {k: v for i, sub in enumerate(value) for k, v in leaves(sub, f"{path}{i}.").items()}
    if isinstance(value, dict) and not (value and all(k.isdigit() for k in value)):
        return {
            k: v for key, sub in value.items() for k, v in leaves(sub, path + key + ".").items()
        }
    return {path.rstrip("."): value}


@pytest.mark.parametrize("n", range(1, MIN_GROUP + 2))
def test_nothing_else_from_answers_is_returned_below_the_minimum_group(
    client: TestClient, rt: Runtime, n: int
) -> None:
    """A figure added later without the gate fails here: only participation counts may show."""
    answered(client, rt, n)
    summary = leaves(client.get("/api/v1/reports/summary").json())
    assert summary["responses"] == summary["csat.answers"] == n
    from_answers = {k: v for k, v in summary.items() if not participation(k) and k != "csat.hidden"}
    assert "surveys.0.questions.0.figures.score" in from_answers  # the registry's figures too
    assert from_answers, summary
    if n < MIN_GROUP:
        assert summary["csat.hidden"] is True
        assert all(v is None for v in from_answers.values()), from_answers
    else:
        assert summary["csat.hidden"] is False
        assert all(v is not None for v in from_answers.values()), from_answers


@pytest.mark.parametrize(
    ("responses", "consents", "shown"),
    [
        (5, 5, 5),  # everyone: the rest is empty
        (5, 0, 0),  # no one
        (5, 4, None),  # would single out the fifth, who said no
        (6, 5, None),
        (9, 4, None),  # four people named in a group of nine
        (10, 5, 5),  # both parts are groups of five
    ],
)
def test_p5_contact_consents_shown_only_when_both_parts_are_empty_or_large(
    client: TestClient, rt: Runtime, responses: int, consents: int, shown: int | None
) -> None:
    forms = [{"csat": "4", "contact": "yes" if i < consents else "no"} for i in range(responses)]
    respond(client, rt, forms)
    assert client.get("/api/v1/reports/summary").json()["contact_consents"] == shown
    assert dashboard_figure(client, "contact-consents") == ("–" if shown is None else str(shown))


def test_skipped_consent_counts_in_the_rest_of_the_group(client: TestClient, rt: Runtime) -> None:
    respond(client, rt, [{"csat": "3", "contact": "yes"}] * 5 + [{"csat": "3"}])
    summary = client.get("/api/v1/reports/summary").json()
    assert summary["responses"] == 6 and summary["contact_consents"] is None


def test_scores_are_computed_on_those_who_answered_the_score(
    client: TestClient, rt: Runtime
) -> None:
    respond(client, rt, [{"csat": "5", "contact": "no"}] * 4 + [{"contact": "no"}] * 3)
    summary = client.get("/api/v1/reports/summary").json()
    assert summary["responses"] == 7 and summary["contact_consents"] == 0
    assert summary["csat"]["answers"] == 4 and summary["csat"]["average"] is None


def test_min_group_is_read_from_reporting_by_the_api_and_the_dashboard(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disclosure, "MIN_GROUP", 3)
    answered(client, rt, 3)
    summary = client.get("/api/v1/reports/summary").json()
    assert summary["min_group"] == 3 and summary["csat"]["average"] == _average(SCORES[:3])
    assert dashboard_figure(client, "csat-average") == f"{_average(SCORES[:3]):.2f}"
    assert "groups of at least 3 people" in client.get("/dashboard").text
