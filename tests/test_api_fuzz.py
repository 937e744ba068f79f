"""Generated requests, valid and invalid, from the OpenAPI description: no input causes a 500, and
every answer is one the description documents (status, content type, body shape)."""

from __future__ import annotations

import unicodedata

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import interaction_payload

PHONES = ["+4741234567", "98765432", "+46701234567", "+358401234567", "+45 20 12 34 56"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_generated_request_makes_the_api_answer_500_or_off_its_description(
    client: TestClient,
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    auth = client.headers["Authorization"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5

    for operation in operations:
        for mode in schemathesis.GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode), with_token=st.booleans())
            @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case, with_token: bool) -> None:
                headers = {"Authorization": auth} if with_token else {}
                response = case.call(headers=headers)
                assert response.status_code < 500, (case.method, case.path, case.body)
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                check()
            except Unsatisfiable:
                # an operation without parameters or body has no invalid form to generate
                assert (
                    mode is schemathesis.GenerationMode.NEGATIVE
                    and operation.method.lower() == "get"
                )


def refused_as_text(value: str) -> bool:
    """What tilfreds.fields refuses in a one-line id: controls, line separators, blank."""
    if any(unicodedata.category(c) in {"Cc", "Zl", "Zp"} for c in value):
        return True
    return all(c.isspace() or unicodedata.category(c) in {"Zs", "Cf"} for c in value)


# names that pass every rule: letters and marks in at most six words (no dots, digits or @)
word = st.text(st.characters(categories=["L", "M"]), min_size=1, max_size=15)
names = st.lists(word, min_size=1, max_size=6).map(" ".join)


@given(
    name=names,
    reason=st.text(min_size=1, max_size=120),
    external_id=st.text(min_size=1, max_size=120),
    phone=st.sampled_from(PHONES),
    locale=st.sampled_from(["", "nb", "nn-NO", "sv", "da-DK", "fi", "en", "xx"]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_text_in_a_valid_shape_is_accepted_or_refused_never_500(
    client: TestClient, name: str, reason: str, external_id: str, phone: str, locale: str
) -> None:
    body = interaction_payload(
        external_id=external_id,
        reason=reason,
        customer={"name": name, "phone": phone, "locale": locale},
    )
    response = client.post("/api/v1/interactions", json=body)
    assert response.status_code in {200, 201, 422}, response.text
    refused = locale == "xx" or refused_as_text(reason) or refused_as_text(external_id)
    # a number without its country code is read in the country of the language: a Norwegian
    # one may or may not be a mobile number there
    if refused or phone.startswith("+") or locale[:2] not in ("sv", "da", "fi"):
        assert (response.status_code == 422) == refused, response.text


@given(name=st.text(max_size=120))
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_customer_name_is_accepted_or_refused_on_that_field(
    client: TestClient, name: str
) -> None:
    body = interaction_payload(customer={"name": name, "phone": PHONES[0]})
    response = client.post("/api/v1/interactions", json=body)
    assert response.status_code in {200, 201, 422}, response.text
    if response.status_code == 422:
        assert response.json()["error"]["field"] == "customer.name"
        assert not name.strip() or name not in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/s/%00", "/s/abc%00def", "/s/" + "a" * 300, "/s/æøå"])
def test_odd_survey_links_are_a_404_page(client: TestClient, path: str) -> None:
    for response in (client.get(path), client.post(path, data={"csat": "3"})):
        assert response.status_code == 404 and "<form" not in response.text


def test_nul_in_a_dev_phone_reply_is_refused_on_the_page(client: TestClient) -> None:
    response = client.post("/dev/phone/reply", data={"phone": "+4741234567", "text": "a\x00b"})
    assert response.status_code == 303 and "error=input" in response.headers["location"]
