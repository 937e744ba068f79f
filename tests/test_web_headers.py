"""Every page carries security headers; survey pages are never cached; API docs need no CDN."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tilfreds.web.headers import SecurityHeaders


def test_survey_links_leak_through_no_referrer_cache_or_frame(client: TestClient) -> None:
    response = client.get("/s/abcdefghijk")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self';" in response.headers["Content-Security-Policy"]


def test_api_docs_are_served_from_the_package_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/vendor/swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/vendor/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_a_responses_own_header_is_replaced_not_doubled() -> None:
    """What a response says itself gives way to the policy; its own Cache-Control stays where
    no-store is not required."""

    def own(_request: Request) -> Response:
        return PlainTextResponse(
            "x", headers={"X-Frame-Options": "SAMEORIGIN", "Cache-Control": "max-age=60"}
        )

    app = SecurityHeaders(Starlette(routes=[Route("/s/x", own), Route("/elsewhere", own)]))
    with TestClient(app) as client:
        survey, elsewhere = client.get("/s/x"), client.get("/elsewhere")
    assert survey.headers.get_list("x-frame-options") == ["DENY"]
    assert survey.headers.get_list("cache-control") == ["no-store"]
    assert elsewhere.headers.get_list("x-frame-options") == ["DENY"]
    assert elsewhere.headers.get_list("cache-control") == ["max-age=60"]
    assert elsewhere.headers["content-type"].startswith("text/plain")
