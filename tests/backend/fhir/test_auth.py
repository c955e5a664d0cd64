"""SMART Backend Services over real HTTP: signed client assertions (RS384, ES384), replay, expiry,
scopes, API keys, and nothing served without authentication."""

from __future__ import annotations

import time

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.fhir.clients import BadRegistration, do_add_client
from backend.models import AuditEvent, FhirAccessToken
from tests.backend.fhir.conftest import BASE, SigningKey, fhir_valid, register, token_form

SCOPES = ["system/Patient.cruds", "system/Encounter.cruds", "system/Task.rs"]


def _audit(db: Session, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def test_a_signed_assertion_gets_a_short_token_that_reads(
    client: TestClient, db: Session, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    register(db, "his", SCOPES, [rsa_key, ec_key])
    for key in (rsa_key, ec_key):
        answer = client.post(f"{BASE}/auth/token", data=token_form(key.assertion("his"), "system/Patient.rs"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "bearer" and body["expires_in"] <= 300
        assert body["scope"] == "system/Patient.rs"
        assert answer.headers["cache-control"] == "no-store"
        found = client.get(f"{BASE}/Patient", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert found.status_code == 200
        assert fhir_valid(found.json())["type"] == "searchset"
    stored = db.scalars(sa.select(FhirAccessToken)).all()
    assert all(t.expires_at - t.created_at <= __import__("datetime").timedelta(minutes=5) for t in stored)
    assert {e.detail["client"] for e in _audit(db, "fhir.search")} == {"his"}


def test_a_replayed_assertion_is_refused(client: TestClient, db: Session, rsa_key: SigningKey) -> None:
    register(db, "his", SCOPES, [rsa_key])
    assertion = rsa_key.assertion("his", jti="once")
    assert client.post(f"{BASE}/auth/token", data=token_form(assertion)).status_code == 200
    again = client.post(f"{BASE}/auth/token", data=token_form(assertion))
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client" and "used already" in again.json()["error_description"]
    assert _audit(db, "fhir.token_refused")[0].detail["client"] == "his"


def test_expired_long_lived_and_forged_assertions_are_refused(
    client: TestClient, db: Session, rsa_key: SigningKey
) -> None:
    register(db, "his", SCOPES, [rsa_key])
    expired = rsa_key.assertion("his", lifetime=-120)
    too_long = rsa_key.assertion("his", lifetime=3600)
    other = SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384", "rsa-1")
    forged = other.assertion("his")
    wrong_audience = rsa_key.assertion("his", aud="https://elsewhere.example/token")
    now = int(time.time())
    weak = jwt.encode(
        {"iss": "his", "sub": "his", "aud": "x", "exp": now + 60, "jti": "h"}, "s" * 64, algorithm="HS256"
    )
    for assertion, why in (
        (expired, "expired"),
        (too_long, "5 minutes"),
        (forged, "Signature"),
        (wrong_audience, "audience"),
        (weak, "RS384 or ES384"),
    ):
        answer = client.post(f"{BASE}/auth/token", data=token_form(assertion))
        assert answer.status_code == 401, why
        assert why.lower() in answer.json()["error_description"].lower(), answer.json()
    assert db.scalar(sa.select(sa.func.count()).select_from(FhirAccessToken)) == 0


def test_bad_token_requests_get_oauth_errors(client: TestClient, db: Session, rsa_key: SigningKey) -> None:
    register(db, "his", ["system/Patient.rs"], [rsa_key])
    form = token_form(rsa_key.assertion("his"))
    assert client.post(f"{BASE}/auth/token", data={**form, "grant_type": "password"}).json()["error"] == (
        "unsupported_grant_type"
    )
    beyond = client.post(f"{BASE}/auth/token", data=token_form(rsa_key.assertion("his"), "system/Patient.c"))
    assert (beyond.status_code, beyond.json()["error"]) == (400, "invalid_scope")
    unknown = client.post(f"{BASE}/auth/token", data=token_form(rsa_key.assertion("nobody")))
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")


def test_an_expired_token_and_no_credentials_are_401_outcomes(
    client: TestClient, db: Session, bearer: object, rsa_key: SigningKey
) -> None:
    register(db, "his", SCOPES, [rsa_key])
    headers = bearer("his")  # type: ignore[operator]
    db.execute(sa.update(FhirAccessToken).values(expires_at=FhirAccessToken.created_at))
    db.commit()
    for sent in (headers, {}, {"Authorization": "Basic abc"}, {"X-API-Key": "clk_wrong"}):
        answer = client.get(f"{BASE}/Patient", headers=sent)
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/fhir+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert fhir_valid(answer.json())["resourceType"] == "OperationOutcome"
    assert "expired" in client.get(f"{BASE}/Patient", headers=headers).json()["issue"][0]["diagnostics"]
    assert len(_audit(db, "fhir.unauthenticated")) >= 4


def test_wrong_scope_is_403_and_audited(
    client: TestClient, db: Session, bearer: object, rsa_key: SigningKey
) -> None:
    register(db, "reader", ["system/Patient.rs"], [rsa_key])
    headers = bearer("reader")  # type: ignore[operator]
    answer = client.get(f"{BASE}/Encounter", headers=headers)
    assert answer.status_code == 403
    assert "system/Encounter.s" in fhir_valid(answer.json())["issue"][0]["diagnostics"]
    post = client.post(f"{BASE}/Patient", headers=headers, json={"resourceType": "Patient"})
    assert post.status_code == 403
    assert {e.detail["interaction"] for e in _audit(db, "fhir.forbidden")} == {"s", "c"}


def test_an_api_key_is_a_simpler_way_in(client: TestClient, db: Session) -> None:
    key = register(db, "engine", ["system/Patient.rs"], api_key=True)
    assert key is not None and key.startswith("clk_")
    answer = client.get(f"{BASE}/Patient", headers={"X-API-Key": key})
    assert answer.status_code == 200
    assert client.get(f"{BASE}/Encounter", headers={"X-API-Key": key}).status_code == 403


def test_discovery_is_public_and_honest(client: TestClient) -> None:
    metadata = fhir_valid(client.get(f"{BASE}/metadata").json())
    assert metadata["fhirVersion"] == "4.0.1"
    kinds = {r["type"]: {i["code"] for i in r["interaction"]} for r in metadata["rest"][0]["resource"]}
    assert kinds["Patient"] == {"read", "search-type", "create", "update"}
    assert kinds["Task"] == {"read", "search-type"}
    smart = client.get(f"{BASE}/.well-known/smart-configuration").json()
    assert smart["token_endpoint"].endswith("/fhir/R4/auth/token")
    assert smart["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]


def test_registration_refuses_private_keys_and_unknown_scopes(db: Session, rsa_key: SigningKey) -> None:
    private = {**rsa_key.jwk(), "d": "secret"}
    for kwargs, why in (
        ({"jwks": {"keys": [private]}, "scopes": ["system/Patient.rs"]}, "private"),
        ({"jwks": {"keys": [rsa_key.jwk()]}, "scopes": ["user/Patient.rs"]}, "system/"),
        ({"jwks": {"keys": [rsa_key.jwk()]}, "scopes": ["system/Observation.rs"]}, "Observation"),
        ({"scopes": ["system/Patient.rs"]}, "JWKS"),
    ):
        with pytest.raises(BadRegistration, match=why):
            do_add_client(db, name="x", **kwargs)  # type: ignore[arg-type]
