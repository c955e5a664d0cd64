"""A form's free-text answer that describes an emergency: an emergency task and the guidance at once."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.dialogue.safety_net import guidance_text
from backend.followup.catalog import do_publish
from backend.followup.responses import do_start_response
from backend.messaging.links import LinkKind, make_token
from backend.models import Finding, Task, TaskPriority
from bots.domain import Channel
from nlu.safety import Emergency
from tests import factories
from tests.backend.followup.test_followup import DEFINITION, texts

WITH_COMMENT: dict[str, Any] = copy.deepcopy(DEFINITION)
WITH_COMMENT["id"] = "recovery_comment"
WITH_COMMENT["items"].append({"id": "comment", "type": "long_text", "text": texts("Anything else?")})


def _form(db: Session) -> str:
    version = do_publish(db, WITH_COMMENT)
    patient = factories.patient(db, language="en", dept=factories.department(db))
    response = do_start_response(
        db, version=version, patient_id=patient.id, channel=Channel.SMS, language="en"
    )
    db.commit()
    return make_token(get_settings(), LinkKind.FORM, response.id)


def _guidance() -> str:
    settings = get_settings()
    return guidance_text(
        load_catalog(settings.content_dir, settings.hospital_name), "en", Emergency.BREATHING
    )


def test_an_emergency_written_in_a_form_raises_an_emergency_task_and_shows_the_guidance(
    client: TestClient, db: Session
) -> None:
    token = _form(db)
    comment = "since this morning I have chest pain and I can't breathe"
    done = client.post(
        f"/q/{token}", data={"pain": "2", "fever": "no", "comment": comment, "action": "submit"}
    )
    assert done.status_code == 200 and _guidance() in done.text
    task = db.scalars(sa.select(Task)).one()
    assert (task.priority, task.title) == (TaskPriority.EMERGENCY, "recovery_comment:safety:breathing")
    assert task.due_at - task.created_at == timedelta(minutes=15)
    assert db.scalars(sa.select(Finding.items)).one() == ["comment"]


def test_a_calm_comment_raises_nothing_and_thanks_the_patient(client: TestClient, db: Session) -> None:
    token = _form(db)
    done = client.post(
        f"/q/{token}",
        data={"pain": "1", "fever": "no", "comment": "no chest pain any more, thank you", "action": "submit"},
    )
    assert done.status_code == 200 and _guidance() not in done.text and "Thank you" in done.text
    assert db.scalars(sa.select(Task)).all() == []
