"""The bot answers a message in the language it is clearly written in; the patient's language stays.
A second message the bot cannot read that names a symptom is a high-priority hand-off."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.messaging.links import LinkKind, make_token
from backend.models import Patient, Task, TaskKind, TaskPriority
from tests import factories


def _link(db: Session, language: str) -> tuple[int, str]:
    person = factories.patient(db, language=language, dept=factories.department(db))
    db.commit()
    return person.id, make_token(get_settings(), LinkKind.CHAT, person.id)


def _post(client: TestClient, token: str, text: str, client_id: str) -> list[str]:
    response = client.post(
        f"/c/{token}/messages",
        data={"text": text, "client_id": client_id},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    return [item["text"] for item in response.json()["items"] if not item["mine"]]


def _text(lang: str, key: str) -> str:
    settings = get_settings()
    return load_catalog(settings.content_dir, settings.hospital_name).text(lang, key)


def _reprompt(lang: str) -> str:
    """The consent question's re-prompt, as the welcome flow words it."""
    return _text(lang, "welcome.consent_reprompt")


def test_a_clearly_english_message_is_answered_in_english_and_the_record_stays_chinese(
    client: TestClient, db: Session
) -> None:
    patient_id, token = _link(db, "zh-CN")
    client.get(f"/c/{token}")
    english = _post(client, token, "sorry what do you want me to do here", "client-lang-1")
    assert english and _reprompt("en") in english[-1]
    db.expire_all()
    person = db.get(Patient, patient_id)
    assert person is not None and person.language == "zh-CN"
    short = _post(client, token, "??", "client-lang-2")  # nothing clear: the record's language
    assert len(short) >= 2 and _text("zh-CN", "common.passed_to_staff") in short[-2]
    assert "内回复您" in short[-1]  # the expected wait, in the record's language too


def test_a_second_unclear_message_naming_a_symptom_is_a_high_priority_hand_off(
    client: TestClient, db: Session
) -> None:
    patient_id, token = _link(db, "en")
    client.get(f"/c/{token}")
    _post(client, token, "🙂", "client-sym-1")
    _post(client, token, "my stomach feels strange since yesterday", "client-sym-2")
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.kind, task.priority, task.title) == (
        TaskKind.HANDOFF,
        TaskPriority.HIGH,
        "handoff:clarification_failed",
    )


def test_a_second_unclear_message_without_a_symptom_stays_a_normal_hand_off(
    client: TestClient, db: Session
) -> None:
    patient_id, token = _link(db, "en")
    client.get(f"/c/{token}")
    _post(client, token, "🙂", "client-sym-3")
    _post(client, token, "where do I park my car", "client-sym-4")
    db.expire_all()
    task: Any = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.priority, task.title) == (TaskPriority.NORMAL, "handoff:clarification_failed")
