"""Patients' media and case evidence are downloads, never pages of ours: attachment, nosniff, a type from
a short list whatever the provider declared, and a sandboxing CSP."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.media import store_blob
from backend.models import Role
from backend.services import case_files
from tests import factories
from tests.backend.security.test_staff_auth import sign_in
from tests.backend.services.case_world import make_world as _world
from tests.backend.services.case_world import register_case as _register
from tests.conftest import reset_caches

PAGE = b"<html><script>fetch('/staff/patients').then(r => r.text()).then(alert)</script></html>"


@pytest.fixture
def media_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(tmp_path / "media"))
    reset_caches()
    return tmp_path / "media"


def _message_with(db: Session, data: bytes, declared: str) -> int:
    person = factories.patient(db)
    message = factories.reply(db, factories.conversation(db, person), "")
    message.media = [{"mime_type": declared, "stored": store_blob(get_settings(), message.id, data)}]
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    db.commit()
    return message.id


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("image/jpeg", "image/jpeg"),
        ("audio/amr", "audio/amr"),
    ],
)
def test_patient_media_is_a_sandboxed_download(
    media_dir: Path, client: TestClient, db: Session, declared: str, served: str
) -> None:
    message_id = _message_with(db, PAGE, declared)
    sign_in(client, "agent1")
    response = client.get(f"/staff/media/{message_id}/0")
    assert response.status_code == 200 and response.content == PAGE
    assert response.headers["content-type"].split(";")[0] == served
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"


def test_case_evidence_is_a_sandboxed_download(media_dir: Path, client: TestClient, db: Session) -> None:
    w = _world(db)
    case = _register(db, w)
    found = case_files.do_attach(
        db, get_settings(), case=case, staff_id=w.nurse.id, filename="notes.txt", data=b"<b>hi</b>"
    )
    db.commit()
    sign_in(client, "nurse1")
    response = client.get(f"/staff/cases/{case.id}/attachments/{found.id}")
    assert response.status_code == 200 and response.content == b"<b>hi</b>"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["content-security-policy"] == "sandbox; default-src 'none'"
