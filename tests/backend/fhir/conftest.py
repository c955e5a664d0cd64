"""FHIR API test helpers: a registered client with a generated key, signed assertions, token requests,
and a check of every response body against fhir.resources' models."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy.orm import Session

from backend.fhir.clients import ASSERTION_TYPE, do_add_client
from backend.models import Department

TOKEN_URL = "http://127.0.0.1:8000/fhir/R4/auth/token"
BASE = "/fhir/R4"


def fhir_valid(body: dict[str, Any]) -> dict[str, Any]:
    """The body, after checking it is a valid FHIR resource (R4B models: R4's for these resources)."""
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


@dataclass
class SigningKey:
    private: Any
    algorithm: str
    kid: str

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        codec = RSAAlgorithm if self.algorithm == "RS384" else ECAlgorithm
        data: dict[str, Any] = json.loads(codec.to_jwk(public))
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def assertion(self, client_id: str, *, lifetime: int = 240, jti: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_URL,
            "exp": now + lifetime,
            "iat": now,
            "jti": jti or uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384", "rsa-1")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP384R1()), "ES384", "ec-1")


def register(
    db: Session,
    name: str,
    scopes: list[str],
    keys: list[SigningKey] | None = None,
    *,
    api_key: bool = False,
    department: Department | None = None,
) -> str | None:
    jwks = {"keys": [k.jwk() for k in keys]} if keys else None
    registered = do_add_client(
        db, name=name, scopes=scopes, jwks=jwks, api_key=api_key, department=department
    )
    db.commit()
    return registered.api_key


def token_form(assertion: str, scope: str | None = None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if scope:
        form["scope"] = scope
    return form


@pytest.fixture
def bearer(client: TestClient, rsa_key: SigningKey) -> Callable[..., dict[str, str]]:
    """Headers carrying a fresh access token of a registered client."""

    def make(name: str, scope: str | None = None) -> dict[str, str]:
        answer = client.post(f"{BASE}/auth/token", data=token_form(rsa_key.assertion(name), scope))
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    return make


@pytest.fixture
def api(client: TestClient) -> Iterator[TestClient]:
    yield client
