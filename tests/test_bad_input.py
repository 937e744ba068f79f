"""Bad input to the API gets a 4xx in the documented error shape: never a 500, never an echo."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import interaction_payload
from tilfreds.people.models import Interaction
from tilfreds.runtime import Runtime

MARKER = "ZQXJ-01017012345"  # stands for a refused value that must never come back


def post_raw(client: TestClient, raw: str, path: str = "/api/v1/interactions") -> Any:
    # surrogatepass: a lone surrogate goes over the wire as the JSON escape a client would send
    return client.post(
        path,
        content=raw.encode("utf-8", "surrogatepass"),
        headers={"content-type": "application/json"},
    )


def assert_error_shape(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "field"} and error["message"], error
    if field is not None:
        assert error.get("field") == field, error
    return dict(error)


def interactions(rt: Runtime) -> int:
    with rt.db.read_only() as session:
        return int(session.execute(select(func.count()).select_from(Interaction)).scalar_one())


def with_raw(field: str, raw: str) -> str:
    """The standard payload as JSON text with one value replaced by raw JSON text."""
    body = interaction_payload()
    path = field.split(".")
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = "@@RAW@@"
    return json.dumps(body).replace('"@@RAW@@"', raw)


STRING_FIELDS = [
    "external_id",
    "survey",
    "reason",
    "case_ref",
    "channel",
    "occurred_at",
    "customer.name",
    "customer.phone",
    "customer.locale",
]


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_lone_surrogate_in_any_string_is_422_not_500(
    client: TestClient, rt: Runtime, field: str
) -> None:
    for raw in ('"\\ud800"', '"Kari \\udfff Nordmann"'):
        response = post_raw(client, with_raw(field, raw))
        assert_error_shape(response, 422, field)
        assert b"\\ud" not in response.content.lower()
    assert interactions(rt) == 0


def test_lone_surrogate_in_a_key_is_422_and_not_echoed(client: TestClient) -> None:
    raw = json.dumps(interaction_payload()).replace('"case_ref"', '"\\ud800"')
    response = post_raw(client, raw)
    assert_error_shape(response, 422)
    assert b"\\ud" not in response.content.lower()


def test_lone_surrogate_in_a_dev_phone_reply_is_422(client: TestClient) -> None:
    for raw in ('{"from": "+4741234567", "text": "\\ud800"}', '{"from": "\\ud800", "text": "x"}'):
        assert_error_shape(post_raw(client, raw, "/api/v1/dev/inbound"), 422)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize("field", ["external_id", "occurred_at", "customer.name", "customer"])
def test_nan_infinity_and_huge_numbers_are_422_not_500(
    client: TestClient, number: str, field: str
) -> None:
    assert_error_shape(post_raw(client, with_raw(field, number)), 422, field)


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59+00:00",
        "1999-12-31T23:59:59Z",
        "2101-01-01T00:00:00+00:00",
    ],
)
def test_occurred_at_outside_years_2000_to_2100_is_422_not_500(
    client: TestClient, rt: Runtime, when: str
) -> None:
    response = client.post("/api/v1/interactions", json=interaction_payload(occurred_at=when))
    error = assert_error_shape(response, 422, "occurred_at")
    assert "2000" in error["message"] and "2100" in error["message"]
    assert when not in response.text
    assert interactions(rt) == 0


REFUSED_BODIES = [
    interaction_payload(channel=MARKER),
    interaction_payload(external_id=MARKER * 20),
    interaction_payload(occurred_at=MARKER),
    interaction_payload(customer=MARKER),
    interaction_payload(customer={"name": "Kari", "phone": MARKER * 3}),
    interaction_payload(**{MARKER: "x"}),
    interaction_payload(customer={"name": "Kari", "phone": "41234567", MARKER: MARKER}),
    interaction_payload(reason=["a", MARKER]),
    [MARKER],
    MARKER,
]


@pytest.mark.parametrize("body", REFUSED_BODIES)
def test_refused_input_is_never_echoed(client: TestClient, body: Any) -> None:
    response = client.post("/api/v1/interactions", json=body)
    assert_error_shape(response, 422)
    assert MARKER not in response.text


def test_invalid_json_is_422_in_the_error_shape(client: TestClient) -> None:
    error = assert_error_shape(post_raw(client, '{"external_id": "' + MARKER), 422)
    assert error["code"] == "invalid_input" and "JSON" in error["message"]
    assert MARKER not in error["message"]


def test_validation_error_names_the_field_by_its_path(client: TestClient) -> None:
    response = client.post(
        "/api/v1/interactions",
        json=interaction_payload(customer={"name": "Kari", "phone": "4" * 40}),
    )
    error = assert_error_shape(response, 422, "customer.phone")
    assert error["code"] == "invalid_input" and "32" in error["message"]
    missing = interaction_payload()
    del missing["reason"]
    error = assert_error_shape(client.post("/api/v1/interactions", json=missing), 422, "reason")
    assert "required" in error["message"]


def test_unknown_api_paths_and_methods_answer_in_the_error_shape(client: TestClient) -> None:
    assert assert_error_shape(client.get("/api/v1/nope"), 404)["code"] == "not_found"
    assert assert_error_shape(client.get("/api/nope"), 404)["code"] == "not_found"
    response = client.delete("/api/v1/interactions")
    assert assert_error_shape(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


def test_unknown_web_paths_get_an_html_404_page(client: TestClient) -> None:
    for path in ("/nope", "/dashboard/x", "/s/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "<html" in response.text and "not found" in response.text.lower()
        assert response.headers["X-Frame-Options"] == "DENY"
    wrong_method = client.delete("/")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"
    assert "<html" in wrong_method.text


BLANKS = [" ", "   ", "\u00a0", "\u3000", "\u2003 \u2009", "\u200a"]


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize("field", ["external_id", "reason", "survey", "customer.name"])
def test_whitespace_only_names_and_ids_are_refused(
    client: TestClient, rt: Runtime, blank: str, field: str
) -> None:
    response = post_raw(client, with_raw(field, json.dumps(blank)))
    error = assert_error_shape(response, 422, field)
    assert "blank" in error["message"]
    assert interactions(rt) == 0


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("https://evil.example/x", "web address"),
        ("Kari www.example.no", "web address"),
        ("Kari bit.ly/abc", "web address"),
        ("kari@example.no", "web address"),
        ("Kari 41234567", "digits"),
        ("Kari Nordmann 010170", "digits"),
        ("Kari ١٢٣", "digits"),
        ("A" * 101, "100"),
        ("Kari Anne Marie Berit Solveig Ingrid Nordmann", "6 words"),
    ],
)
def test_customer_name_must_be_a_short_person_name(
    client: TestClient, rt: Runtime, name: str, why: str
) -> None:
    body = interaction_payload(customer={"name": name, "phone": "41234567"})
    error = assert_error_shape(client.post("/api/v1/interactions", json=body), 422)
    assert error["field"] == "customer.name" and why in error["message"], error
    assert name not in error["message"]
    assert interactions(rt) == 0


@pytest.mark.parametrize(
    "name",
    ["Kari", "Kari Nordmann", "Jean-Luc O'Neill", "J. R. R. Tolkien", "Åse Ødegård", "李 小龙"],
)
def test_ordinary_person_names_are_accepted(client: TestClient, name: str) -> None:
    body = interaction_payload(customer={"name": name, "phone": "41234567"})
    assert client.post("/api/v1/interactions", json=body).status_code == 201


def test_unknown_survey_is_not_echoed(client: TestClient) -> None:
    response = client.post("/api/v1/interactions", json=interaction_payload(survey=MARKER))
    assert_error_shape(response, 404, "survey")
    assert MARKER not in response.text


def test_unsupported_locale_is_not_echoed(client: TestClient) -> None:
    body = interaction_payload(customer={"name": "Kari", "phone": "41234567", "locale": "zz"})
    response = client.post("/api/v1/interactions", json=body)
    assert_error_shape(response, 422, "locale")
    assert "'zz'" not in response.text


def test_a_body_that_is_not_utf8_is_422_like_any_malformed_json(client: TestClient) -> None:
    for raw in ("ø".encode("latin-1"), b'{"external_id": "\xff\xfe"}'):
        response = client.post(
            "/api/v1/interactions", content=raw, headers={"content-type": "application/json"}
        )
        assert assert_error_shape(response, 422)["code"] == "invalid_input"
