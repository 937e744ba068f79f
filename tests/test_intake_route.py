"""``POST /api/v1/interactions`` is answered by a plain route in front of the FastAPI one: a
well-formed request never reaches FastAPI's dependency solving, and everything else is handed on
to the FastAPI route with its body, answered exactly as before."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import routing
from fastapi.testclient import TestClient

from tests.factories import interaction_payload


def refuse_fastapi(monkeypatch: pytest.MonkeyPatch) -> None:
    def solve(*_: Any, **__: Any) -> Any:
        raise AssertionError("the FastAPI route was used")

    monkeypatch.setattr(routing, "solve_dependencies", solve)


def test_a_well_formed_intake_skips_fastapi_and_answers_as_documented(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_fastapi(monkeypatch)
    first = client.post("/api/v1/interactions", json=interaction_payload())
    again = client.post("/api/v1/interactions", json=interaction_payload())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.headers["content-type"] == "application/json"
    assert first.json()["outcome"] == "scheduled" and first.json()["invitation"]["id"]
    assert again.json() == {**first.json(), "created": False}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"content-type": "application/json"}, 422),
        (json.dumps({"external_id": "x"}).encode(), {"content-type": "application/json"}, 422),
        # JSON without saying so: FastAPI (strict about the content type) refuses it
        (json.dumps(interaction_payload()).encode(), {}, 422),
        (json.dumps(interaction_payload()).encode(), {"content-type": "text/plain"}, 422),
        (b"", {"content-type": "application/json"}, 422),
    ],
)
def test_anything_else_is_handed_on_to_the_fastapi_route_with_its_body(
    client: TestClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/api/v1/interactions", content=body, headers=headers)
    assert answer.status_code == status
    if status == 422:
        assert set(answer.json()) == {"error"} and answer.json()["error"]["code"]


def test_a_domain_refusal_from_the_plain_route_has_the_error_shape(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_fastapi(monkeypatch)
    unknown = client.post("/api/v1/interactions", json=interaction_payload(survey="no-such"))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert "no-such" not in unknown.text  # never echoed


def test_without_a_token_the_plain_route_is_never_reached(client: TestClient) -> None:
    del client.headers["Authorization"]
    answer = client.post("/api/v1/interactions", json=interaction_payload())
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
