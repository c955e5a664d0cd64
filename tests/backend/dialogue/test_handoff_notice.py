"""After a hand-off the patient is told the expected wait (the task's SLA, and whether anyone is on duty);
after a complaint, its case number. In three languages, through the real chat route."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.dialogue.handoff_notice import wait_words
from backend.messaging.links import LinkKind, make_token
from backend.models import FeedbackCase, Task, TaskKind, TaskPriority
from backend.services.duty import do_set_roster
from backend.services.sla import do_set_department_sla, do_set_kind_table
from bots.catalog import Catalog
from tests import factories
from tests.backend.dialogue.webchat_driver import MENU, Chat, at_the_menu, text_of

LANGS = ["zh-CN", "vi", "en"]


def _catalog() -> Catalog:
    settings = get_settings()
    return load_catalog(settings.content_dir, settings.hospital_name)


@pytest.mark.parametrize(
    ("wait", "en", "zh", "vi"),
    [
        (timedelta(seconds=1), "1 minute", "1分钟", "1 phút"),
        (timedelta(minutes=15), "15 minutes", "15分钟", "15 phút"),
        (timedelta(minutes=59, seconds=30), "1 hour", "1小时", "1 giờ"),
        (timedelta(minutes=60), "1 hour", "1小时", "1 giờ"),
        (timedelta(minutes=61), "2 hours", "2小时", "2 giờ"),
        (timedelta(hours=24), "24 hours", "24小时", "24 giờ"),
        (timedelta(hours=48), "48 hours", "48小时", "48 giờ"),
        (timedelta(hours=49), "3 days", "3天", "3 ngày"),
        (timedelta(hours=72), "3 days", "3天", "3 ngày"),
        (timedelta(0), "1 minute", "1分钟", "1 phút"),
    ],
)
def test_a_wait_reads_in_whole_units_rounded_up(wait: timedelta, en: str, zh: str, vi: str) -> None:
    catalog = _catalog()
    assert [wait_words(catalog, lang, wait) for lang in ("en", "zh-CN", "vi")] == [en, zh, vi]


def _department_of(db: Session, patient_id: int) -> int:
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert task.department_id is not None
    return task.department_id


@pytest.mark.parametrize("lang", LANGS)
def test_asking_for_a_person_tells_the_wait_and_that_nobody_is_on_duty(
    client: TestClient, db: Session, lang: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(choice="human")
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert task.kind is TaskKind.HANDOFF
    wait = wait_words(_catalog(), lang, task.due_at - task.created_at)
    expected = _catalog().text(
        lang, "handoff.wait_off_duty", wait=wait, emergency_number=get_settings().emergency_number
    )
    assert [i["text"] for i in chat.seen] == [text_of(lang, "common.passed_to_staff"), expected]
    assert wait in chat.text() and "{" not in chat.text()


@pytest.mark.parametrize("lang", LANGS)
def test_with_someone_on_duty_the_wait_is_the_departments_own_sla(
    client: TestClient, db: Session, lang: str
) -> None:
    dept = factories.department(db)
    nurse = factories.staff(db, username=f"duty-{lang}", departments=[dept])
    do_set_roster(db, department_id=dept.id, on_duty_id=nurse.id, fallback_id=None, staff_id=None)
    do_set_department_sla(db, department_id=dept.id, priority=TaskPriority.NORMAL, minutes=90)
    person = factories.patient(db, language=lang, dept=dept)
    db.commit()
    chat = Chat(client, make_token(get_settings(), LinkKind.CHAT, person.id))
    chat.open()
    chat.say(choice="yes")
    chat.say(MENU[lang])
    chat.say(choice="human")
    two_hours = _catalog().text(lang, "wait.hours", n=2)
    assert chat.seen[-1]["text"] == _catalog().text(lang, "handoff.wait_on_duty", wait=two_hours)
    assert _department_of(db, person.id) == dept.id


@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "护士态度很差"), ("vi", "điều dưỡng thái độ rất tệ"), ("en", "the nurse was rude to me")],
)
def test_a_complaint_gets_its_case_number_and_wait(
    client: TestClient, db: Session, lang: str, words: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(choice="feedback")
    chat.say(choice="complaint")
    chat.say(choice="none")
    chat.say(words)
    chat.say(choice="no")  # not anonymous
    db.expire_all()
    case = db.scalars(sa.select(FeedbackCase).where(FeedbackCase.patient_id == patient_id)).one()
    said = chat.text()
    assert text_of(lang, "fb.thanks") in said
    assert f"#{case.id}" in said and "{" not in said
    task = db.get(Task, case.task_id)
    assert task is not None
    assert wait_words(_catalog(), lang, task.due_at - task.created_at) in said


def test_a_complaint_is_promised_the_hospitals_time_for_complaints(client: TestClient, db: Session) -> None:
    do_set_kind_table(
        db,
        kind=TaskKind.COMPLAINT,
        department_id=None,
        minutes={p: 2880 for p in (TaskPriority.HIGH, TaskPriority.NORMAL, TaskPriority.LOW)},
        staff_id=None,
    )
    db.commit()
    patient_id, chat = at_the_menu(client, db, "en")
    chat.say(choice="feedback")
    chat.say(choice="complaint")
    chat.say(choice="none")
    chat.say("the nurse was rude to me")
    chat.say(choice="no")
    db.expire_all()
    case = db.scalars(sa.select(FeedbackCase).where(FeedbackCase.patient_id == patient_id)).one()
    task = db.get(Task, case.task_id)
    assert task is not None and task.kind is TaskKind.COMPLAINT
    assert task.due_at - task.created_at == timedelta(hours=48)
    assert "48 hours" in chat.text()
