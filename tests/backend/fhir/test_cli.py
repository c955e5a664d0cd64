"""`careloop fhir-client add`: a client registered from the command line can get a token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.cli import main
from backend.models import FhirClient
from tests import factories
from tests.backend.fhir.conftest import BASE, SigningKey, token_form


def test_fhir_client_add(
    client: TestClient, db: Session, rsa_key: SigningKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factories.department(db, code="CARD")
    db.commit()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_key.jwk()]}))
    argv = ["fhir-client", "add", "his", "--jwks", str(jwks), "--scope", "system/Patient.rs", "--api-key"]
    assert main([*argv, "--department", "CARD"]) == 0
    printed = capsys.readouterr().out
    key = printed.split("X-API-Key): ")[1].strip()
    assert client.get(f"{BASE}/Patient", headers={"X-API-Key": key}).status_code == 200
    assert client.post(f"{BASE}/auth/token", data=token_form(rsa_key.assertion("his"))).status_code == 200
    assert db.scalars(sa.select(FhirClient)).one().department_id is not None
    assert main(["fhir-client", "add", "other", "--api-key", "--scope", "system/Observation.rs"]) == 2
    assert main(["fhir-client", "add", "his", "--api-key", "--scope", "system/Patient.rs"]) == 2
    assert "exists already" in capsys.readouterr().err
