"""In Chromium, on the seeded demo data: an administrator switches her pages' language in the top bar (it is
kept on her account) and reads the main staff pages in English, Chinese and Vietnamese; no page shows a raw
id, an enum's code, a Python repr, or on the Chinese and Vietnamese pages an untranslated English word."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import seed_site
from backend.content.flows import KIND as FLOWS
from backend.demo.seed import seed
from backend.followup.catalog import do_publish
from backend.models import (
    Clinician,
    Department,
    Encounter,
    FollowUpPlan,
    Message,
    Patient,
    QuestionnaireVersion,
    Role,
    StaffUser,
    TaskKind,
    TaskPriority,
    Ward,
)
from backend.models.base import utcnow
from backend.services import inbox
from backend.services.consents import do_grant_consent, do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.browser.visible_words import leaks
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
DUMP = Path(os.environ["CARELOOP_WORDS_DUMP"]) if os.environ.get("CARELOOP_WORDS_DUMP") else None  # to debug
LANGUAGES = {"en": "English", "zh-CN": "中文", "vi": "Tiếng Việt"}
HEADINGS = {"en": "Inbox", "zh-CN": "工作台", "vi": "Hộp công việc"}


def _demo(db: Session) -> dict[str, str]:
    """The demo hospital with a few conversations in the inbox; the pages to read, by name."""
    seed(db, patients=12)
    cardio = db.scalars(sa.select(Department).where(Department.code == "CARD")).one()
    people = list(db.scalars(sa.select(Patient).order_by(Patient.id).limit(3)))
    first, second, third = people
    conv = factories.conversation(db, first, Channel.SMS)
    factories.reply(db, conv, "I feel dizzy since this morning", at=utcnow() - timedelta(minutes=20))
    handoff = factories.task(db, person=first, dept=cardio, conv=conv, priority=TaskPriority.URGENT)
    chat = factories.conversation(db, second, Channel.WEBCHAT)
    factories.reply(db, chat, "Can I take my tablets with food?")
    factories.task(db, person=second, dept=cardio, conv=chat, priority=TaskPriority.EMERGENCY)
    answer = factories.task(db, kind=TaskKind.ABNORMAL_ANSWER, person=third, dept=cardio)
    factories.outbox_item(db, conv)
    do_grant_consent(db, patient_id=first.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="demo")
    do_revoke_consent(
        db, patient_id=first.id, purpose=ConsentPurpose.MARKETING, channel=Channel.SMS, source="sms:STOP"
    )
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    do_publish(db, DEFINITION)
    seed_site(db, get_settings().content_dir)  # as `careloop demo` does: texts and flows in the studio
    flow_draft = rv.do_start_draft(db, rv.get_item(db, FLOWS, "booking"), root)
    db.commit()
    inbox.do_claim(db, task=answer, staff_id=root.id)
    db.commit()
    plan = db.scalars(sa.select(FollowUpPlan).order_by(FollowUpPlan.id)).first()
    assert plan is not None
    return {
        "home": "/staff",
        "inbox": "/staff/inbox",
        "task": f"/staff/inbox/{handoff.id}",
        "patients": "/staff/patients",
        "patient record": f"/staff/patients/{first.id}",
        "plan": f"/staff/outreach/plans/{plan.id}",
        "outreach": "/staff/outreach",
        "statistics": "/staff/stats",
        "admin": "/staff/admin",
        "admin staff": "/staff/admin/staff",
        "admin departments": "/staff/admin/org/department",
        "admin audit": "/staff/admin/audit",
        "admin health": "/staff/admin/health",
        "studio": "/staff/studio",
        "work": "/staff/work",
        "flows": "/staff/flows",
        "flow editor": f"/staff/studio/items/{FLOWS}/booking/r/{flow_draft.number}",
        "message log": "/staff/messages",
        "response times": "/staff/safety/sla?kind=complaint",
    }


def _data_words(db: Session) -> list[str]:
    """What the records hold, shown as it was entered: names, codes, diagnoses, what patients wrote."""
    words: list[str] = []
    for p in db.scalars(sa.select(Patient)):
        words += [p.name, p.mrn]
    for s in db.scalars(sa.select(StaffUser)):
        words += [s.display_name, s.username]
    for d in db.scalars(sa.select(Department)):
        words += [d.name, d.code, *d.names.values()]
    for w in db.scalars(sa.select(Ward)):
        words += [w.name, w.code]
    for c in db.scalars(sa.select(Clinician)):
        words += [c.name, *c.names.values(), c.title or "", c.code or ""]
    for e in db.scalars(sa.select(Encounter)):
        words += [d.get("text", "") for d in e.diagnoses or []] + [
            d.get("code", "") for d in e.diagnoses or []
        ]
    words += list(db.scalars(sa.select(FollowUpPlan.name)))
    words += list(db.scalars(sa.select(Message.text)))
    words += [
        str(t)
        for q in db.scalars(sa.select(QuestionnaireVersion))
        for t in (q.definition.get("title") or {}).values()
    ]
    return [w for w in words if w]


def test_no_staff_page_shows_a_raw_id_or_an_untranslated_word(
    live_server: str, browser: Any, db: Session
) -> None:
    pages = _demo(db)
    data = _data_words(db)
    secret = db.scalars(sa.select(StaffUser.totp_secret).where(StaffUser.username == "root")).one()
    assert secret
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    found: list[str] = []
    try:
        page.goto(f"{live_server}/staff/login")
        page.get_by_label("Username").fill("root")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).now())
        page.get_by_label("Password").press("Enter")
        page.wait_for_url(lambda url: "/staff/login" not in url)
        for lang, name in LANGUAGES.items():
            page.goto(f"{live_server}/staff/inbox")
            page.locator("#staff-language").select_option(label=name)
            page.locator("form.staff-lang button").click()
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(page.locator("main h1")).to_have_text(HEADINGS[lang])  # back on the page she was on
            for title, path in pages.items():
                page.goto(f"{live_server}{path}")
                expect(page.locator("main h1").first).to_be_visible()
                # what is marked not to be translated (a patient's literal keyword, a log's raw detail) is
                # data shown as it was received
                page.evaluate("document.querySelectorAll('[translate=no]').forEach(e => e.remove())")
                text = page.locator("body").inner_text()
                if DUMP:
                    (DUMP / f"{lang}-{title.replace(' ', '_')}.txt").write_text(text, encoding="utf-8")
                found += [f"{lang} {title} ({path}): {leak}" for leak in leaks(text, lang, data)]
    finally:
        context.close()
    assert not found, "\n".join(found)
    db.expire_all()
    assert db.scalars(sa.select(StaffUser.language).where(StaffUser.username == "root")).one() == "vi"
