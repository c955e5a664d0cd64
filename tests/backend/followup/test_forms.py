"""The patient questionnaire form `/q/<token>`: links, validation, progress, completion, second submission."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import do_publish
from backend.followup.responses import do_start_response
from backend.messaging.links import LinkKind, make_token
from backend.models import Finding, QuestionnaireResponse, ResponseStatus, Task, TaskKind, TaskPriority
from bots.domain import Channel
from tests import factories
from tests.backend.followup.test_followup import DEFINITION


def _form(db: Session, language: str = "en") -> tuple[int, str]:
    version = do_publish(db, DEFINITION)
    patient = factories.patient(db, language=language, dept=factories.department(db))
    response = do_start_response(
        db, version=version, patient_id=patient.id, channel=Channel.WEBCHAT, language=language
    )
    db.commit()
    return response.id, make_token(get_settings(), LinkKind.FORM, response.id)


def _response(db: Session, response_id: int) -> QuestionnaireResponse:
    db.expire_all()
    found = db.get(QuestionnaireResponse, response_id)
    assert found is not None
    return found


def test_form_opens_in_the_patients_language(client: TestClient, db: Session) -> None:
    _, token = _form(db, language="zh-CN")
    page = client.get(f"/q/{token}")
    assert page.status_code == 200 and 'lang="zh-CN"' in page.text
    assert "Recovery check（中）" in page.text and "Pain today?（中）" in page.text and "提交" in page.text
    assert "data-when" in page.text  # the temperature question waits for "fever: yes"


def test_valid_answers_complete_the_response_and_raise_one_task(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    done = client.post(
        f"/q/{token}",
        data={"pain": "8", "fever": "yes", "temperature": "39.5", "action": "submit"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/q/{token}/done"
    assert "Thank you" in client.get(done.headers["location"]).text
    response = _response(db, response_id)
    assert response.status is ResponseStatus.COMPLETED
    assert response.answers == {"pain": 8, "fever": "yes", "temperature": "39.5"}
    priorities = {
        t.title: t.priority for t in db.scalars(sa.select(Task).where(Task.kind == TaskKind.ABNORMAL_ANSWER))
    }
    assert priorities == {"recovery:very_hot": TaskPriority.URGENT}  # the form's two findings, one task


def test_out_of_range_answer_is_refused_with_a_reason_and_progress_kept(
    client: TestClient, db: Session
) -> None:
    response_id, token = _form(db)
    page = client.post(f"/q/{token}", data={"pain": "14", "fever": "no", "action": "submit"})
    assert page.status_code == 422
    assert "0" in page.text and "10" in page.text and 'class="error"' in page.text
    response = _response(db, response_id)
    assert response.status is ResponseStatus.IN_PROGRESS and response.answers == {"fever": "no"}
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 0


def test_missing_required_answer_is_marked(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    page = client.post(f"/q/{token}", data={"pain": "2", "action": "submit"})
    assert page.status_code == 422 and "Required" in page.text
    assert _response(db, response_id).status is ResponseStatus.IN_PROGRESS


def test_progress_is_saved_between_visits(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    saved = client.post(
        f"/q/{token}", data={"pain": "3", "action": "save"}, headers={"Accept": "application/json"}
    )
    assert saved.status_code == 200 and saved.json() == {"saved": True, "errors": {}}
    again = client.get(f"/q/{token}").text
    assert 'value="3" checked' in again
    assert _response(db, response_id).answers == {"pain": 3}


def test_typed_answers_are_accepted_as_patients_write_them(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    client.post(f"/q/{token}", data={"pain": "３", "fever": "yes", "temperature": "38,5", "action": "submit"})
    assert _response(db, response_id).answers == {"pain": 3, "fever": "yes", "temperature": "38.5"}


def test_answer_to_a_disabled_question_is_dropped(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    client.post(f"/q/{token}", data={"pain": "1", "fever": "no", "temperature": "40", "action": "submit"})
    response = _response(db, response_id)
    assert response.status is ResponseStatus.COMPLETED and "temperature" not in response.answers
    assert db.scalar(sa.select(sa.func.count()).select_from(Finding)) == 0  # 40 °C was never asked


def test_unknown_option_code_is_refused(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    assert (
        client.post(f"/q/{token}", data={"pain": "1", "fever": "maybe", "action": "submit"}).status_code
        == 422
    )
    assert _response(db, response_id).status is ResponseStatus.IN_PROGRESS


def test_second_submission_of_a_completed_form_changes_nothing(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    client.post(f"/q/{token}", data={"pain": "8", "fever": "no", "action": "submit"})
    before = _response(db, response_id).answers
    again = client.post(f"/q/{token}", data={"pain": "1", "fever": "no", "action": "submit"})
    assert again.status_code == 409 and "already completed" in again.text
    assert _response(db, response_id).answers == before
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 1
    assert "already completed" in client.get(f"/q/{token}").text


@pytest.mark.parametrize("make", ["forged", "chat_token", "unknown"])
def test_bad_links_are_404_and_change_nothing(client: TestClient, db: Session, make: str) -> None:
    response_id, token = _form(db)
    bad: dict[str, Any] = {
        "forged": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "chat_token": make_token(get_settings(), LinkKind.CHAT, response_id),  # right id, wrong purpose
        "unknown": make_token(get_settings(), LinkKind.FORM, 999999),
    }
    assert client.get(f"/q/{bad[make]}", headers={"Accept-Language": "en"}).status_code == 404
    assert client.post(f"/q/{bad[make]}", data={"pain": "1", "fever": "no"}).status_code == 404
    assert _response(db, response_id).answers == {}


def test_expired_link_is_410(client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    response_id, _ = _form(db)
    old = time.time() - 15 * 86400
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: old)
        token = make_token(get_settings(), LinkKind.FORM, response_id)
    page = client.get(f"/q/{token}", headers={"Accept-Language": "vi"})
    assert page.status_code == 410 and "hết hạn" in page.text


def test_oversized_post_is_refused(client: TestClient, db: Session) -> None:
    response_id, token = _form(db)
    page = client.post(f"/q/{token}", data={"pain": "1", "fever": "no", "note": "x" * 70000})
    assert page.status_code == 413
    assert _response(db, response_id).answers == {}
