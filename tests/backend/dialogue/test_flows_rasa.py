"""Flows end to end through the web chat against the real Rasa server, in zh-CN, vi and en: free words at
the main menu reach booking, feedback (a stored case), consent withdrawal, FAQ answers and a person.

And the same chat with Rasa unreachable: safety rules, menus and structured answers still work, free
text is re-asked and then politely handed to staff; never an error."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.dialogue.safety_net import guidance_text
from backend.models import (
    Appointment,
    AppointmentStatus,
    ConsentEvent,
    Conversation,
    ConversationOwner,
    Direction,
    FeedbackCase,
    Message,
    Task,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from bots.domain import Channel, ConsentPurpose
from nlu.safety import Emergency
from tests.backend.dialogue.webchat_driver import MENU, at_the_menu, text_of
from tests.backend.services import booking_data
from tests.conftest import reset_caches
from tests.rasa_fixtures import free_port

LANGS = ("zh-CN", "vi", "en")


@pytest.fixture
def rasa_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_NLU_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    reset_caches()


# --- with the real Rasa server ------------------------------------------------------------------------


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "我想挂个号"), ("vi", "tôi muốn đặt lịch khám"), ("en", "i'd like to make an appointment")],
)
def test_free_words_at_the_menu_lead_to_a_booked_appointment(
    with_rasa: str, client: TestClient, db: Session, lang: str, words: str
) -> None:
    clinic = booking_data.clinic(db, now=utcnow())
    db.commit()
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(words)
    assert text_of(lang, "booking.ask_department") in chat.text()
    chat.say(choice=str(clinic.department_id))
    for _ in range(4):  # doctor, day, time of day, site: any
        chat.say(choice="any")
    slot = next(c["payload"] for c in chat.choices() if c["payload"].isdigit())
    chat.say(choice=slot)
    chat.say(choice="yes")
    db.expire_all()
    appointment = db.scalars(sa.select(Appointment).where(Appointment.patient_id == patient_id)).one()
    assert (appointment.slot_id, appointment.status) == (int(slot), AppointmentStatus.BOOKED)


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "words", "details"),
    [
        ("zh-CN", "护士态度太差了，我要投诉", "夜班护士对我母亲大声呵斥。"),
        ("vi", "tôi muốn khiếu nại về bác sĩ", "Bác sĩ không giải thích kết quả cho tôi."),
        ("en", "the nurse was rude, i want to complain", "The night nurse shouted at my mother."),
    ],
)
def test_a_complaint_in_free_words_is_stored_as_a_feedback_case(
    with_rasa: str, client: TestClient, db: Session, lang: str, words: str, details: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(words)
    text = chat.text()
    assert text_of(lang, "fb.ask_department") in text  # the kind was understood, not asked
    assert text_of(lang, "fb.ask_kind") not in text
    chat.say(choice="none")
    chat.say(details)
    chat.say(choice="no")  # not anonymous
    assert text_of(lang, "fb.thanks") in chat.text()
    db.expire_all()
    case = db.scalars(sa.select(FeedbackCase)).one()
    assert (case.kind.value, case.text, case.patient_id, case.anonymous) == (
        "complaint",
        details,
        patient_id,
        False,
    )


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "撤回我的授权"), ("vi", "tôi muốn rút lại sự đồng ý"), ("en", "i withdraw my consent")],
)
def test_consent_is_withdrawn_after_asking_in_free_words(
    with_rasa: str, client: TestClient, db: Session, lang: str, words: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(words)
    assert text_of(lang, "consent.current") in chat.text()
    chat.say(choice=ConsentPurpose.CARE.value)
    chat.say(choice="revoke")
    assert text_of(lang, "consent.revoked") in chat.text()
    db.expire_all()
    events = db.scalars(
        sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient_id).order_by(ConsentEvent.id)
    ).all()
    assert [(e.purpose, e.channel, e.granted) for e in events] == [
        (ConsentPurpose.CARE, Channel.WEBCHAT, True),  # the welcome flow
        (ConsentPurpose.CARE, Channel.WEBCHAT, False),
    ]


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "words", "answer"),
    [
        ("zh-CN", "医院停车场在哪里", "faq.parking"),
        ("vi", "giờ thăm bệnh là mấy giờ", "faq.visiting_hours"),
        ("en", "how do i pay my bill", "faq.billing"),
    ],
)
def test_a_question_in_free_words_gets_the_authored_answer_at_once(
    with_rasa: str, client: TestClient, db: Session, lang: str, words: str, answer: str
) -> None:
    _, chat = at_the_menu(client, db, lang)
    chat.say(words)
    text = chat.text()
    assert text_of(lang, answer) in text and text_of(lang, "faq.ask") not in text
    assert text_of(lang, "faq.more") in text


@pytest.mark.rasa
@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "能让医院的人给我回个电话吗"), ("vi", "kết nối với y tá"), ("en", "connect me with a nurse")],
)
def test_asking_for_a_person_in_free_words_hands_off_and_the_bot_goes_quiet(
    with_rasa: str, client: TestClient, db: Session, lang: str, words: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(words)
    assert text_of(lang, "common.passed_to_staff") in chat.text()
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.kind, task.priority, task.title) == (
        TaskKind.HANDOFF,
        TaskPriority.NORMAL,
        "handoff:asked_for_human",
    )
    assert db.scalars(sa.select(Conversation)).one().owner is ConversationOwner.STAFF
    assert chat.say("1") == []  # staff own it: no bot reply, and no second task
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 1


# --- with Rasa unreachable ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "我胸口剧痛，喘不过气"), ("vi", "tôi bị đau ngực dữ dội"), ("en", "I have chest pain")],
)
def test_with_rasa_down_an_emergency_still_raises_an_emergency_task(
    rasa_down: None, client: TestClient, db: Session, lang: str, words: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(words)
    settings = get_settings()
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    category = Emergency.BREATHING if lang == "zh-CN" else Emergency.CHEST_PAIN  # 喘不过气 comes first
    assert guidance_text(catalog, lang, category) in chat.text()  # call the emergency number now
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.priority, task.title) == (TaskPriority.EMERGENCY, "handoff:emergency")


@pytest.mark.parametrize(("lang", "words"), [("zh-CN", "退订"), ("vi", "HỦY ĐĂNG KÝ"), ("en", "STOP")])
def test_with_rasa_down_stop_still_withdraws_care_messages(
    rasa_down: None, client: TestClient, db: Session, lang: str, words: str
) -> None:
    patient_id, chat = at_the_menu(client, db, lang)
    chat.say(words)
    assert text_of(lang, "common.stopped") in chat.text()
    db.expire_all()
    last = db.scalars(
        sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient_id).order_by(ConsentEvent.id.desc())
    ).first()
    assert last is not None and (last.purpose, last.granted) == (ConsentPurpose.CARE, False)


@pytest.mark.parametrize("lang", LANGS)
def test_with_rasa_down_menus_and_numbered_answers_still_work(
    rasa_down: None, client: TestClient, db: Session, lang: str
) -> None:
    _, chat = at_the_menu(client, db, lang)
    chat.say(choice="faq")
    assert text_of(lang, "faq.ask") in chat.text()
    chat.say("2")  # parking, by its number
    assert text_of(lang, "faq.parking") in chat.text()
    chat.say(text_of(lang, "common.no"))  # typed yes/no
    chat.say(MENU[lang])
    assert text_of(lang, "menu.prompt") in chat.text()


FREE_WORDS = [
    ("zh-CN", "我想挂个号", "我想问一下停车的事"),
    ("vi", "tôi muốn đặt lịch khám", "bãi đỗ xe ở đâu"),
    ("en", "i'd like to make an appointment", "where can i park"),
]


@pytest.mark.parametrize(("lang", "first", "second"), FREE_WORDS)
def test_with_rasa_down_free_text_is_read_by_the_embedded_classifier(
    rasa_down: None, client: TestClient, db: Session, lang: str, first: str, second: str
) -> None:
    clinic = booking_data.clinic(db, now=utcnow())
    db.commit()
    patient_id, chat = at_the_menu(client, db, lang)
    started = time.monotonic()
    chat.say(first)
    assert text_of(lang, "booking.ask_department") in chat.text()
    assert str(clinic.department_id) in [c["payload"] for c in chat.choices()]
    chat.say(MENU[lang])
    chat.say(second)
    assert text_of(lang, "faq.parking") in chat.text()
    assert time.monotonic() - started < 5  # the client's 1 s timeouts and breaker, not a hang
    db.expire_all()
    assert db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).all() == []


@pytest.mark.parametrize(("lang", "first", "second"), FREE_WORDS)
def test_with_no_classifier_at_all_free_text_is_re_asked_then_politely_handed_to_staff(
    rasa_down: None,
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,
    db: Session,
    lang: str,
    first: str,
    second: str,
) -> None:
    monkeypatch.setenv("CARELOOP_NLU_EMBEDDED", "false")
    reset_caches()
    patient_id, chat = at_the_menu(client, db, lang)
    started = time.monotonic()
    chat.say(first)
    assert text_of(lang, "menu.reprompt") in chat.text()
    chat.say(second)
    said = [item["text"] for item in chat.seen]  # handed over, then told how long the wait should be
    assert said[0] == text_of(lang, "common.passed_to_staff") and len(said) == 2
    assert time.monotonic() - started < 5  # the client's 1 s timeouts and breaker, not a hang
    db.expire_all()
    task = db.scalars(sa.select(Task).where(Task.patient_id == patient_id)).one()
    assert (task.kind, task.title) == (TaskKind.HANDOFF, "handoff:clarification_failed")
    inbound = db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND)).all()
    assert {m.status.value for m in inbound} == {"processed"}
