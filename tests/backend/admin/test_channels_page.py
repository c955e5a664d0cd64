"""The channels page over HTTP: values saved there win over the environment and show where they come
from, secrets are stored encrypted and never shown again, bad values are refused with nothing stored,
WeChat fields that would not show in full are refused per language, and a test send reaches the staff
member's own phone through the real outbox (a local Twilio), or says why the gates stopped it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, ChannelSetting, OutboxItem, OutboxStatus
from backend.outbox.overrides import effective_settings, template_row
from backend.outbox.providers import sender_for, template_for
from tests.backend.admin.helpers import admin, sign_in
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches

SENDER = "+15005550006"
PAGE = "/staff/admin/channels"


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", SENDER)
        reset_caches()
        yield fake
        reset_caches()


def _signed_in(client: TestClient, db: Session, phone: str | None = None) -> tuple[str, int]:
    root = admin(db)
    root.phone = phone
    db.commit()
    return sign_in(client, root), root.id


def _audit(db: Session, prefix: str) -> list[AuditEvent]:
    db.expire_all()
    return list(
        db.scalars(sa.select(AuditEvent).where(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.id))
    )


def test_a_saved_sender_wins_over_the_environment_until_cleared(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    token, _ = _signed_in(client, db)
    page = client.get(PAGE).text
    assert 'data-setting="twilio_sms_from" data-source="environment"' in page
    saved = client.post(
        f"{PAGE}/setting", data={"csrf_token": token, "name": "twilio_sms_from", "value": "+15005550009"}
    )
    assert saved.status_code == 200 and 'data-setting="twilio_sms_from" data-source="console"' in saved.text
    assert effective_settings().twilio_sms_from == "+15005550009"
    assert sender_for_sms_sender() == "+15005550009"  # the adapter was rebuilt with it
    settings_page = client.get("/staff/admin/settings").text
    assert 'data-setting="twilio_sms_from" data-source="console"' in settings_page
    client.post(f"{PAGE}/setting", data={"csrf_token": token, "name": "twilio_sms_from", "action": "clear"})
    assert effective_settings().twilio_sms_from == SENDER
    assert [e.action for e in _audit(db, "admin.channel_setting")] == [
        "admin.channel_setting",
        "admin.channel_setting_clear",
    ]


def sender_for_sms_sender() -> str:
    from bots.domain import Channel

    return str(sender_for(Channel.SMS).sender)  # type: ignore[attr-defined]


def test_a_secret_is_stored_encrypted_and_never_shown_again(client: TestClient, db: Session) -> None:
    token, _ = _signed_in(client, db)
    secret = "gateway-token-0123456789"
    response = client.post(
        f"{PAGE}/setting", data={"csrf_token": token, "name": "sms_gateway_token", "value": secret}
    )
    assert response.status_code == 200 and secret not in response.text
    assert 'data-setting="sms_gateway_token" data-source="console"' in response.text
    raw = db.execute(
        sa.text("SELECT secret, value FROM channel_settings WHERE name = 'sms_gateway_token'")
    ).one()
    assert secret not in str(raw.secret) and raw.value is None  # ciphertext only
    token_now = effective_settings().sms_gateway_token
    assert token_now is not None and token_now.get_secret_value() == secret
    assert secret not in client.get("/staff/admin/settings").text
    [event] = _audit(db, "admin.channel_setting")
    assert event.detail == {"name": "sms_gateway_token", "replaced": True}
    empty = client.post(
        f"{PAGE}/setting", data={"csrf_token": token, "name": "sms_gateway_token", "value": ""}
    )
    assert empty.status_code == 400 and "Type the new secret" in empty.text
    assert effective_settings().sms_gateway_token.get_secret_value() == secret  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("sms_signature", "【某某医院】", "without brackets"),
        ("sms_brandname", "BENHVIEN-DAKHOA-TRUNGUONG", "up to 11 Latin letters"),
        ("twilio_sms_from", "12345", "not a sender"),
        ("sms_gateway_url", "ftp://gateway", "http://"),
        ("send_rates", "twilio:+15005550006 = fast", "messages per second"),
        ("sms_template_ids", "no_such_template = SMS_1", "no such template"),
        ("secret_key", "x", "cannot be set here"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_stored(
    client: TestClient, db: Session, name: str, value: str, says: str
) -> None:
    token, _ = _signed_in(client, db)
    response = client.post(f"{PAGE}/setting", data={"csrf_token": token, "name": name, "value": value})
    assert response.status_code == 400 and says in response.text
    assert db.scalar(sa.select(sa.func.count()).select_from(ChannelSetting)) == 0
    assert _audit(db, "admin.channel") == []


def test_carrier_registrations_are_saved(client: TestClient, db: Session) -> None:
    token, _ = _signed_in(client, db)
    for name, value in (
        ("sms_signature", "康复医院"),
        ("sms_brandname", "BV TAMANH"),
        ("sms_template_ids", "notice = SMS_123456"),
        ("send_rates", "twilio:+15005550006 = 25"),
    ):
        response = client.post(f"{PAGE}/setting", data={"csrf_token": token, "name": name, "value": value})
        assert response.status_code == 200, (name, response.text[-500:])
    settings = effective_settings()
    assert (settings.sms_signature, settings.sms_brandname) == ("康复医院", "BV TAMANH")
    assert settings.sms_template_ids == {"notice": "SMS_123456"}
    assert settings.send_rates == {"twilio:+15005550006": 25.0}


def test_wechat_fields_that_would_not_show_in_full_are_refused_per_language(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_HOSPITAL_NAME", "The Second Affiliated Hospital of the University")
    reset_caches()
    token, _ = _signed_in(client, db)
    form = {"csrf_token": token, "key": "notice", "channel": "wechat", "template_id": "TPL-notice-1"}
    unbounded = client.post(
        f"{PAGE}/template", data={**form, "fields": "first = {hospital}\nthing1 = {text}"}
    )
    assert unbounded.status_code == 400 and "thing1 holds a message" in unbounded.text
    too_long = client.post(f"{PAGE}/template", data={**form, "fields": "thing2 = {hospital}"})
    assert too_long.status_code == 400
    for language in ("中文", "Tiếng Việt", "English"):
        assert f"thing2 in {language}: 48 characters" in too_long.text
    assert db.get(ChannelSetting, template_row("notice", "wechat")) is None
    fits = client.post(
        f"{PAGE}/template", data={**form, "fields": "first = {hospital}\nthing2 = 随访提醒\nremark = {text}"}
    )
    assert fits.status_code == 200 and 'data-template="notice:wechat" data-source="console"' in fits.text
    item = OutboxItem(channel=_wechat(), template_key="notice", template_vars={"text": "Hello"})
    template = template_for(item, "en", effective_settings())
    assert template is not None and template.provider_id == "TPL-notice-1"
    assert template.variables == {
        "first": "The Second Affiliated Hospital of the University",
        "thing2": "随访提醒",
        "remark": "Hello",
    }


def _wechat() -> object:
    from bots.domain import Channel

    return Channel.WECHAT


def test_a_whatsapp_template_needs_a_content_sid(client: TestClient, db: Session) -> None:
    token, _ = _signed_in(client, db)
    form = {"csrf_token": token, "key": "notice", "channel": "whatsapp", "fields": "1 = {text}"}
    refused = client.post(f"{PAGE}/template", data={**form, "template_id": "notice-template"})
    assert refused.status_code == 400 and "starting with HX" in refused.text
    sid = "HX" + "a" * 32
    saved = client.post(f"{PAGE}/template", data={**form, "template_id": sid})
    assert saved.status_code == 200 and sid in saved.text


def test_a_test_send_reaches_the_admins_own_phone_through_the_outbox(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    token, staff_id = _signed_in(client, db, phone="+8613800138001")
    response = client.post(f"{PAGE}/test", data={"csrf_token": token, "channel": "sms"})
    assert response.status_code == 200 and 'data-status="sent"' in response.text
    assert [m.params["To"] for m in twilio.messages] == ["+8613800138001"]
    assert "CareLoop test message" in twilio.messages[0].params["Body"]
    db.expire_all()
    item = db.scalars(sa.select(OutboxItem).where(OutboxItem.to_staff_id == staff_id)).one()
    assert item.status is OutboxStatus.SENT
    assert [e.detail["channel"] for e in _audit(db, "admin.test_send")] == ["sms"]


def test_a_test_send_without_an_address_shows_what_the_gates_decided(
    twilio: FakeTwilio, client: TestClient, db: Session
) -> None:
    token, _ = _signed_in(client, db)
    response = client.post(f"{PAGE}/test", data={"csrf_token": token, "channel": "wechat"})
    assert response.status_code == 200
    assert 'data-status="suppressed" data-reason="unreachable"' in response.text
    assert "no address on this channel" in response.text and twilio.messages == []


def test_someone_elses_test_send_is_not_shown(client: TestClient, db: Session) -> None:
    _signed_in(client, db)
    assert client.get(f"{PAGE}/test/999999").status_code == 404


@pytest.mark.parametrize("lang", ["zh-CN", "vi", "en"])
def test_the_page_renders_in_each_language(client: TestClient, db: Session, lang: str) -> None:
    root = admin(db)
    root.language = lang
    db.commit()
    sign_in(client, root)
    page = client.get(PAGE)
    assert page.status_code == 200
    title = {"zh-CN": "渠道与模板", "vi": "Kênh và mẫu tin", "en": "Channels and templates"}[lang]
    assert title in page.text


def test_a_nurse_may_not_open_or_change_the_channels(client: TestClient, db: Session) -> None:
    from tests import factories

    nurse = factories.staff(db, username="nurse1")
    db.commit()
    token = sign_in(client, nurse)
    assert client.get(PAGE).status_code == 403
    refused = client.post(
        f"{PAGE}/setting", data={"csrf_token": token, "name": "sms_signature", "value": "康复医院"}
    )
    assert refused.status_code == 403
    assert db.scalar(sa.select(sa.func.count()).select_from(ChannelSetting)) == 0
    assert [e.action for e in _audit(db, "admin.view_denied")] == ["admin.view_denied", "admin.view_denied"]
