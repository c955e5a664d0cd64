"""In Chromium on a phone: the email unsubscribe page in each of the three languages asks before it acts,
stops that purpose's emails when the patient presses the button, and has no serious or critical
accessibility violations before and after."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.email_tokens import unsubscribe_token
from backend.services.consents import do_grant_consent, has_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.browser.axe import assert_no_serious_violations

pytestmark = pytest.mark.browser

WORDS = {  # the question, the button, the confirmation: content/dialogues/messages/email/<lang>.yaml
    "en": ("Stop news emails from", "Stop these emails", "Done. You will not receive these emails any more."),
    "zh-CN": ("不再接收", "退订此类邮件", "已退订。您将不再收到此类邮件。"),
    "vi": (
        "Ngừng nhận email tin tức từ",
        "Ngừng nhận các email này",
        "Đã xong. Bạn sẽ không nhận các email này nữa.",
    ),
}


@pytest.mark.parametrize("lang", sorted(WORDS))
def test_the_unsubscribe_page_asks_then_stops_in_the_patients_language(
    live_server: str, browser: Any, db: Session, lang: str
) -> None:
    person = factories.patient(db, language=lang, email="lan@example.vn")
    # marketing is opt-in: she agreed to news by email, which is what the link in them withdraws
    do_grant_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.MARKETING, channel=Channel.EMAIL, source="test"
    )
    db.commit()
    assert has_consent(db, person.id, ConsentPurpose.MARKETING, Channel.EMAIL)
    question, button, done = WORDS[lang]
    token = unsubscribe_token(get_settings(), person.id, ConsentPurpose.MARKETING)
    phone = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True)
    try:
        page = phone.new_page()
        page.goto(f"{live_server}/m/u/{token}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("#unsubscribe-question")).to_contain_text(question)
        assert_no_serious_violations(page)
        page.get_by_role("button", name=button, exact=True).click()
        expect(page.locator("#unsubscribe-done")).to_have_text(done)
        assert_no_serious_violations(page)
        page.goto(f"{live_server}/m/u/{person.id}-marketing-00000000000000000000")
        expect(page.locator("#unsubscribe-invalid")).to_be_visible()
        assert_no_serious_violations(page)
    finally:
        phone.close()
    db.expire_all()
    assert not has_consent(db, person.id, ConsentPurpose.MARKETING, Channel.EMAIL)
    assert has_consent(db, person.id, ConsentPurpose.CARE, Channel.EMAIL)  # only the link's purpose
