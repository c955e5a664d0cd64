"""No raw id, text key, unfilled parameter or name in another language ever reaches a patient: every option
of the main menu walked to its end through the real chat route, in three languages, on a hospital whose
records hold internal names and per-language display names."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.messaging.links import LinkKind, make_token
from backend.models import Clinician, Department, Site
from backend.models.base import utcnow
from tests import factories
from tests.backend.dialogue.webchat_driver import MENU, Chat
from tests.backend.services import booking_data

OPTIONS = ["register", "book", "appointments", "consent", "feedback", "survey", "faq", "human", "bye"]
DEPARTMENT = {"zh-CN": "心血管内科", "vi": "Khoa Tim mạch", "en": "Cardiology"}
DOCTOR = {"zh-CN": "王丽医生", "vi": "BS. Vương Lệ", "en": "Dr Wang Li"}
# What the hospital's records hold and a patient must never read.
RAW = ["CARD-INT-07", "WANG LI (HIS)", "SITE-MAIN"]
RAW_WORDS = re.compile(
    r"\b(None|True|False|post_discharge|webchat|asked_for_human|clarification_failed|handoff:|"
    r"out_of_scope|nlu_fallback)\b|[{}]|<[A-Za-z]+[ (]|\w+\(\w+="
)
# Plausible replies to a question without buttons (a phone, a name, a text, a date).
TYPED = ["0912345678", "1960-05-17", "The parking signs were hard to find"]


def _hospital(db: Session) -> Department:
    dept = Department(code="CARD-INT-07", name="CARD-INT-07", names=DEPARTMENT)
    place = Site(
        code="SITE-MAIN",
        name="SITE-MAIN",
        names={"zh-CN": "本部院区", "vi": "Cơ sở chính", "en": "Main site"},
        timezone="Asia/Shanghai",
        address="1 Hospital Road",
    )
    db.add_all([dept, place])
    db.flush()
    clinic = booking_data.clinic(db, now=utcnow(), department=dept, at=place)
    doctor = db.get(Clinician, clinic.clinician_id)
    assert doctor is not None
    doctor.name, doctor.names = "WANG LI (HIS)", DOCTOR
    db.commit()
    return dept


def _walk(chat: Chat, option: str, seen: list[str]) -> None:
    chat.say(choice=option)
    typed = iter(TYPED * 3)
    for _ in range(10):
        seen.extend(i["text"] for i in chat.seen)
        seen.extend(c["label"] for c in chat.choices())
        offered = [c["payload"] for c in chat.choices()]
        if not chat.seen:  # staff hold the conversation now: the bot is quiet
            return
        if offered:
            # the first real option, so the walk goes forward (not "back", not "skip")
            forward = [p for p in offered if p not in {"back", "__skip", "none"}]
            chat.say(choice=(forward or offered)[0])
        else:
            chat.say(next(typed))


@pytest.mark.parametrize("lang", ["zh-CN", "vi", "en"])
def test_no_raw_id_or_key_reaches_the_patient_in_any_language(
    client: TestClient, db: Session, lang: str
) -> None:
    settings = get_settings()
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    keys = {key for table in catalog.messages.values() for key in table}
    dept = _hospital(db)
    seen: list[str] = []
    for option in OPTIONS:
        person = factories.patient(db, language=lang, dept=dept)
        db.commit()
        chat = Chat(client, make_token(settings, LinkKind.CHAT, person.id))
        chat.open()
        seen.extend(i["text"] for i in chat.seen)
        chat.say(choice="yes")
        chat.say(MENU[lang])
        seen.extend(i["text"] for i in chat.seen)
        _walk(chat, option, seen)
    assert len(seen) > 60
    said = "\n".join(seen)
    for text in seen:
        assert not RAW_WORDS.search(text), text
        assert not any(raw in text for raw in RAW), text
        assert not any(key in text for key in keys if "." in key), text
    # the hospital's names come in the patient's language, never in another one
    assert DEPARTMENT[lang] in said and DOCTOR[lang] in said
    for other in {"zh-CN", "vi", "en"} - {lang}:
        assert DEPARTMENT[other] not in said and DOCTOR[other] not in said
