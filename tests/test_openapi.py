"""The API description a newcomer meets at /docs: bearer auth, tags, and examples that are true."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tilfreds.api.error_responses import ErrorOut
from tilfreds.invitations.schemas import InteractionOut


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def test_the_description_declares_bearer_auth_for_token_routes(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for method, path, op in operations(spec):
        if not path.startswith("/api/v1/dev/"):
            assert op.get("security") == [{"bearer": []}], (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_every_route_has_a_tag_and_a_summary(spec: dict[str, Any]) -> None:
    described = {t["name"] for t in spec["tags"]}
    for method, path, op in operations(spec):
        assert op.get("tags") and set(op["tags"]) <= described, (method, path)
        assert op.get("summary"), (method, path)


def test_errors_are_documented_in_the_shape_they_are_sent(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for method, path, op in operations(spec):
        for status, answer in op["responses"].items():
            if status.startswith("4"):
                content = answer["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
                ErrorOut.model_validate(content["example"])


def test_the_interaction_examples_are_what_the_api_does(
    spec: dict[str, Any], client: TestClient
) -> None:
    op = spec["paths"]["/api/v1/interactions"]["post"]
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    first = client.post("/api/v1/interactions", json=examples["interaction"]["value"])
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/interactions", json=examples["interaction"]["value"])
    assert again.status_code == 200
    for status, response in (("201", first), ("200", again)):
        example = op["responses"][status]["content"]["application/json"]["example"]
        InteractionOut.model_validate(example)
        assert set(example) == set(response.json())
        assert example["created"] == response.json()["created"]
    refused = client.post("/api/v1/interactions", json=examples["refused"]["value"])
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "customer"
    shown = op["responses"]["422"]["content"]["application/json"]["example"]["error"]
    wrong = {**examples["interaction"]["value"]["customer"], "phone": "4" * 40}
    real = client.post(
        "/api/v1/interactions",
        json={**examples["interaction"]["value"], "external_id": "x", "customer": wrong},
    )
    assert real.json()["error"] == shown
