"""Every response carries the security headers; pages with patient data or signed links are never cached."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.web.app import create_app
from backend.web.security_headers import HEADERS
from tests import factories
from tests.conftest import reset_caches


def test_pages_with_patient_data_carry_the_headers_and_are_not_cached(
    client: TestClient, db: Session
) -> None:
    person = factories.patient(db)
    db.commit()
    chat = client.get(f"/c/{make_token(get_settings(), LinkKind.CHAT, person.id)}")
    refused = client.get("/c/forged-token")
    sign_in = client.get("/staff/login")
    for response in (chat, refused, sign_in):
        assert response.status_code in (200, 404)
        for name, value in HEADERS.items():
            assert response.headers[name] == value
        assert response.headers["cache-control"] == "no-store"
    assert refused.status_code == 404


def test_public_responses_carry_the_headers_but_may_be_cached(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.headers["x-frame-options"] == "DENY"
    assert "cache-control" not in health.headers


def test_the_policy_keeps_forms_base_and_framing_to_our_own_pages(client: TestClient) -> None:
    policy = client.get("/staff/login").headers["content-security-policy"]
    for directive in ("form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "strict-transport-security" not in client.get("/healthz").headers  # plain http in development


@pytest.mark.postgres
def test_production_tells_browsers_to_use_https_only(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("CARELOOP_PUBLIC_URL", "https://careloop.example.org")
    reset_caches()
    try:
        with TestClient(create_app(), base_url="https://careloop.example.org") as production:
            response = production.get("/healthz")
        assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    finally:
        monkeypatch.undo()
        reset_caches()
