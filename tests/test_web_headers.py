"""Every page carries security headers; survey pages are never cached; API docs need no CDN."""

from __future__ import annotations

from fastapi.testclient import TestClient


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
