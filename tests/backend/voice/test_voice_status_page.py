"""The voice status page's speech and call-window sections: which languages are heard by which engine,
each model's checksum and why one was refused, each site's windows and caller id; in three languages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.i18n import CATALOG_DIR
from backend.voice import engines
from tests import factories
from tests.backend.security.test_staff_auth import sign_in

TEMPLATE = Path(__file__).resolve().parents[3] / "backend/web/templates/staff/voice.html"


@pytest.fixture
def configured(db: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    dept = factories.department(db, code="CARD")
    factories.staff(db, username="nurse", departments=[dept])
    db.commit()
    for name, value in {
        "CARELOOP_VOICE_VOSK_MODELS": json.dumps({"vi": str(tmp_path / "vi-model")}),
        "CARELOOP_VOICE_VOSK_MODEL_SHA256": json.dumps({"vi": "b" * 64}),
        "CARELOOP_VOICE_CALL_WINDOWS": '["09:00-12:00", "14:00-20:00"]',
        "CARELOOP_VOICE_HOLIDAYS": '["2027-01-01"]',
        "CARELOOP_TWILIO_VOICE_FROM": "+15005550006",
        "CARELOOP_VOICE_SITES": json.dumps(
            {"east": {"departments": ["CARD"], "windows": ["10:00-11:30"], "caller_id": "+862100000001"}}
        ),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    engines._checked.cache_clear()
    yield
    get_settings.cache_clear()
    engines._checked.cache_clear()


def _row(html: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert found, row_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_the_page_says_how_each_language_is_heard_and_each_sites_rules(
    client: TestClient, configured: None
) -> None:
    sign_in(client, "nurse")
    html = client.get("/staff/voice").text
    assert _row(html, "speech-vi").startswith("vi Keypad only Missing")  # the model's folder is not there
    assert "does not exist" in _row(html, "speech-vi") and "b" * 64 in _row(html, "speech-vi")
    assert _row(html, "speech-en").startswith("en pocketsphinx (bundled English model) Not set")
    assert _row(html, "speech-zh-CN").startswith("zh-CN Keypad only Not set")
    sites = html[html.index('id="sites"') :]
    assert "Hospital-wide" in sites and "09:00-12:00, 14:00-20:00" in sites and "2027-01-01" in sites
    assert "east" in sites and "CARD" in sites and "10:00-11:30" in sites and "+862100000001" in sites


def test_the_new_sections_are_translated(client: TestClient, configured: None, db: Session) -> None:
    for lang, words in (
        ("zh-CN", ("语音识别", "仅按键", "缺失", "外呼时段", "全院")),
        ("vi", ("Nhận dạng giọng nói", "Chỉ bàn phím", "Toàn bệnh viện")),
    ):
        db.execute(sa.text("UPDATE staff_users SET language = :l WHERE username = 'nurse'"), {"l": lang})
        db.commit()
        client.cookies.clear()
        sign_in(client, "nurse")
        html = client.get("/staff/voice").text
        assert [w for w in words if w not in html] == [], lang
        assert "Speech recognition" not in html and "Keypad only" not in html


def test_every_string_of_the_voice_page_is_in_both_catalogues() -> None:
    strings = set(re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', TEMPLATE.read_text()))
    assert len(strings) > 30
    for catalogue in ("zh_CN.po", "vi.po"):
        text = (CATALOG_DIR / catalogue).read_text()
        missing = [s for s in strings if f'msgid "{s}"\n' not in text]
        assert missing == [], catalogue
