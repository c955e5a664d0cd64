"""Free text in a conversation goes to the real Rasa server only when the parsers cannot read it;
with Rasa unreachable the conversation goes on (re-ask, safety rules), never an error."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import ConsentEvent, Task, TaskPriority
from tests import factories
from tests.conftest import reset_caches
from tests.rasa_fixtures import free_port


def _chat(db: Session, language: str) -> tuple[int, str]:
    patient = factories.patient(db, language=language, dept=factories.department(db))
    db.commit()
    return patient.id, make_token(get_settings(), LinkKind.CHAT, patient.id)


def _post(client: TestClient, token: str, text: str, client_id: str) -> Any:
    return client.post(
        f"/c/{token}/messages",
        data={"text": text, "client_id": client_id},
        headers={"Accept": "application/json"},
    )


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "i agree, you can send me reminders"),
        ("zh-CN", "我同意接收短信"),
        ("vi", "đồng ý nhận tin nhắn"),
    ],
)
def test_consent_in_free_words_is_understood_through_rasa(
    rasa_url: str, monkeypatch: pytest.MonkeyPatch, client: TestClient, db: Session, lang: str, text: str
) -> None:
    monkeypatch.setenv("CARELOOP_NLU_URL", rasa_url)
    reset_caches()
    patient_id, token = _chat(db, lang)
    client.get(f"/c/{token}")
    assert _post(client, token, text, "client-nlu-01").status_code == 200
    db.expire_all()
    consent = db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient_id)).one()
    assert consent.granted


def test_with_rasa_unreachable_and_no_classifier_the_bot_re_asks_and_safety_still_works(
    monkeypatch: pytest.MonkeyPatch, client: TestClient, db: Session
) -> None:
    monkeypatch.setenv("CARELOOP_NLU_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("CARELOOP_NLU_EMBEDDED", "false")
    reset_caches()
    patient_id, token = _chat(db, "en")
    client.get(f"/c/{token}")
    started = time.monotonic()
    reply = _post(client, token, "i agree, you can send me reminders", "client-nlu-02")
    assert reply.status_code == 200 and time.monotonic() - started < 5
    assert "Please choose one of the answers" in reply.json()["items"][-1]["text"]
    _post(client, token, "I can't breathe", "client-nlu-03")
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert task.priority is TaskPriority.EMERGENCY
    assert db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient_id)).all() == []


def test_with_rasa_unreachable_the_embedded_classifier_reads_consent_in_free_words(
    monkeypatch: pytest.MonkeyPatch, client: TestClient, db: Session
) -> None:
    monkeypatch.setenv("CARELOOP_NLU_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    reset_caches()
    patient_id, token = _chat(db, "en")
    client.get(f"/c/{token}")
    assert _post(client, token, "i agree, you can send me reminders", "client-nlu-04").status_code == 200
    db.expire_all()
    consent = db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient_id)).one()
    assert consent.granted
