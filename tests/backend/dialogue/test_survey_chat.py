"""A satisfaction survey through the web chat, end to end: picked from the menu, answered by number, by
words and by button, an optional item skipped, left mid-way and resumed, stored as a completed response."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.models import QuestionnaireResponse, ResponseStatus
from tests.backend.dialogue.webchat_driver import MENU, at_the_menu, text_of

SURVEY = "outpatient_satisfaction"
SKIP = "__skip"


def test_a_survey_left_mid_way_resumes_and_is_stored_when_done(client: TestClient, db: Session) -> None:
    publish_all(db, get_settings().content_dir)
    db.commit()
    patient_id, chat = at_the_menu(client, db, "zh-CN")
    chat.say("6")  # "answer a survey", by its number
    assert text_of("zh-CN", "sv.pick") in chat.text()
    chat.say(choice=SURVEY)
    assert "（1/" in chat.text()  # the first question, with its position
    chat.say("1")  # registration: very satisfied, by number
    chat.say("满意")  # waiting time: satisfied, in words
    chat.say(choice=SKIP)  # tests and scans: optional, skipped by its button
    chat.say(MENU["zh-CN"])  # leave mid-way
    assert text_of("zh-CN", "menu.prompt") in chat.text()

    chat.say("6")
    chat.say(choice=SURVEY)
    assert "您上次答到第4题" in chat.text()  # "you were on question 4 of ... continue?"
    chat.say(choice="continue")
    thanks = text_of("zh-CN", "sv.thanks")
    for _ in range(12):  # the rest: the second option by button, the open question skipped
        options = [c for c in chat.choices() if c["payload"] != SKIP]
        chat.say(choice=options[1]["payload"] if options else SKIP)
        if thanks in chat.text():
            break
    assert thanks in chat.text() and text_of("zh-CN", "menu.prompt") in chat.text()  # back at the menu
    db.expire_all()
    response = db.scalars(sa.select(QuestionnaireResponse)).one()
    assert (response.patient_id, response.questionnaire_id, response.completed_at is not None) == (
        patient_id,
        SURVEY,
        True,
    )
    assert response.answers["registration"] == "very_satisfied"
    assert response.answers["waiting_time"] == "satisfied"
    assert response.answers["overall"] == "satisfied"
    assert set(response.skipped) == {"test_waiting", "suggestion"}
    assert response.status is ResponseStatus.COMPLETED
