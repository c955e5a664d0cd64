"""Providers' credentials entered in the admin console: checked against the forms the providers hand them
out in, stored encrypted and never shown, and then used by everything that reads them — the webhooks'
signature checks above all, so a token replaced in the console is the one inbound messages must carry,
and a message signed with the environment's old token is refused with nothing stored."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.admin.channel_store import do_set_setting
from backend.admin.channels import CREDENTIALS, SECRETS, parse_setting
from backend.app.settings import Environment
from backend.models import ChannelSetting, Direction, Message, StaffUser
from backend.outbox.overrides import CONSOLE_SETTINGS, effective_settings
from backend.services.refusal import ActionRefused, Reason
from backend.web.hooks import _wechat_keys
from backend.web.webhook_auth import WebhookRefused
from channels.sms_gateway import gateway_signature
from tests import factories
from tests.backend.admin.helpers import admin, sign_in
from tests.channels.fake_twilio import incoming_sms, sign
from tests.conftest import reset_caches

PUBLIC = "https://careloop.example.org"
ENV_TWILIO_TOKEN = "0" * 32
CONSOLE_TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
GOOD = {
    "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
    "twilio_auth_token": CONSOLE_TWILIO_TOKEN,
    "wechat_app_id": "wx2c2769f8efd9abc2",
    "wechat_app_secret": "a" * 16 + "B" * 8 + "0" * 8,
    "wechat_token": "ConsoleToken2026",
    "wechat_encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}
BAD = {
    "twilio_account_sid": ["SK" + "0" * 32, "AC" + "0" * 31, "AC" + "g" * 32, " "],
    "twilio_auth_token": ["0" * 31, "z" * 32, "0" * 33],
    "wechat_app_id": ["wx2c2769f8efd9abc", "gh_2c2769f8efd9", "wx2c2769f8efd9abcz"],
    "wechat_app_secret": ["a" * 31, "a" * 31 + "-", "a" * 33],
    "wechat_token": ["ab", "a" * 33, "has space", "has-dash"],
    "wechat_encoding_aes_key": ["a" * 42, "a" * 44, "a" * 42 + "="],
}


def test_every_credential_the_console_offers_is_checked_and_the_secret_ones_are_secrets() -> None:
    assert set(CREDENTIALS) <= set(CONSOLE_SETTINGS)
    assert {"twilio_auth_token", "wechat_app_secret", "wechat_token", "wechat_encoding_aes_key"} <= SECRETS
    assert set(GOOD) == set(BAD) == set(CREDENTIALS)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_credential_in_the_providers_form_is_taken_as_typed(name: str) -> None:
    assert parse_setting(name, f"  {GOOD[name]}\n", []) == GOOD[name]


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, values in sorted(BAD.items()) for v in values])
def test_a_credential_not_in_the_providers_form_is_refused(name: str, value: str) -> None:
    with pytest.raises(ActionRefused) as refused:
        parse_setting(name, value, [])
    expected = Reason.SECRET_EMPTY if name in SECRETS and not value.strip() else Reason.CREDENTIAL_INVALID
    assert refused.value.reason is expected


@pytest.fixture
def env_credentials(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "CARELOOP_PUBLIC_URL": PUBLIC,
        "CARELOOP_TWILIO_ACCOUNT_SID": "AC" + "f" * 32,
        "CARELOOP_TWILIO_AUTH_TOKEN": ENV_TWILIO_TOKEN,
        "CARELOOP_SMS_GATEWAY_TOKEN": "environment-gateway-token",
        "CARELOOP_WECHAT_APP_ID": "wx0000000000000000",
        "CARELOOP_WECHAT_TOKEN": "EnvironmentToken",
    }.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    yield
    reset_caches()


def _console(db: Session, **values: str) -> None:
    root = db.scalar(sa.select(StaffUser).where(StaffUser.username == "credentials-admin"))
    if root is None:
        root = admin(db, "credentials-admin")
        db.commit()
    for name, value in values.items():
        do_set_setting(db, name, value, by=root.id, ip=None)
    db.commit()


def _inbound(db: Session) -> list[Message]:
    db.expire_all()
    return list(db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND)))


def _post_sms(client: TestClient, token: str) -> int:
    params = incoming_sms("+8613800138000", "hello")
    return client.post(
        "/hooks/twilio/messages",
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(f"{PUBLIC}/hooks/twilio/messages", params, token),
        },
    ).status_code


def test_twilio_webhooks_are_checked_with_the_token_saved_in_the_console(
    env_credentials: None, client: TestClient, db: Session
) -> None:
    factories.patient(db, phone="+8613800138000")
    db.commit()
    _console(db, twilio_auth_token=CONSOLE_TWILIO_TOKEN)
    assert _post_sms(client, ENV_TWILIO_TOKEN) == 403  # the replaced token no longer signs anything
    assert _inbound(db) == []
    assert _post_sms(client, CONSOLE_TWILIO_TOKEN) == 200
    [message] = _inbound(db)
    assert message.text == "hello"
    raw = db.scalar(sa.text("SELECT secret FROM channel_settings WHERE name = 'twilio_auth_token'"))
    assert raw is not None and CONSOLE_TWILIO_TOKEN not in str(raw)  # stored sealed


def test_sms_gateway_callbacks_are_checked_with_the_token_saved_in_the_console(
    env_credentials: None, client: TestClient, db: Session
) -> None:
    factories.patient(db, phone="+8613800138000")
    db.commit()
    _console(db, sms_gateway_token="console-gateway-token")
    body = b'{"type": "inbound", "id": "gw-in-1", "from": "+8613800138000", "text": "hello"}'

    def post(token: str) -> int:
        return client.post(
            "/hooks/sms-gateway",
            content=body,
            headers={"Content-Type": "application/json", "X-Signature": gateway_signature(body, token)},
        ).status_code

    assert post("environment-gateway-token") == 403 and _inbound(db) == []
    assert post("console-gateway-token") == 200
    assert [m.text for m in _inbound(db)] == ["hello"]


def _wechat_check(client: TestClient, token: str) -> tuple[int, str]:
    timestamp, nonce = "1700000000", "nonce-1"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": "echo-42"}
    response = client.get("/hooks/wechat", params=query)
    return response.status_code, response.text


def test_wechats_url_check_uses_the_token_saved_in_the_console(
    env_credentials: None, client: TestClient, db: Session
) -> None:
    _console(db, wechat_token=GOOD["wechat_token"], wechat_app_id=GOOD["wechat_app_id"])
    assert _wechat_check(client, "EnvironmentToken")[0] == 403
    assert _wechat_check(client, GOOD["wechat_token"]) == (200, "echo-42")
    assert effective_settings().wechat_app_id == GOOD["wechat_app_id"]


def test_production_refuses_a_console_wechat_token_without_its_encoding_aes_key(
    env_credentials: None, db: Session
) -> None:
    _console(db, wechat_token=GOOD["wechat_token"])
    settings = effective_settings()
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    with pytest.raises(WebhookRefused) as refused:
        _wechat_keys(production)
    assert refused.value.status == 503 and "plain mode" in refused.value.reason
    _console(db, wechat_encoding_aes_key=GOOD["wechat_encoding_aes_key"])
    token, aes, _ = _wechat_keys(effective_settings().model_copy(update={"env": Environment.PRODUCTION}))
    assert (token, aes) == (GOOD["wechat_token"], GOOD["wechat_encoding_aes_key"])


def test_the_page_refuses_a_pasted_secret_in_the_wrong_box_and_stores_nothing(
    env_credentials: None, client: TestClient, db: Session
) -> None:
    root = admin(db)
    db.commit()
    token = sign_in(client, root)
    # an AppSecret pasted where the AppID goes
    refused = client.post(
        "/staff/admin/channels/setting",
        data={"csrf_token": token, "name": "wechat_app_id", "value": GOOD["wechat_app_secret"]},
    )
    assert refused.status_code == 400 and "copied whole and into the right box" in refused.text
    assert GOOD["wechat_app_secret"] in refused.text  # what she typed is kept in the box to correct it
    assert db.scalar(sa.select(sa.func.count()).select_from(ChannelSetting)) == 0
    saved = client.post(
        "/staff/admin/channels/setting",
        data={"csrf_token": token, "name": "wechat_app_secret", "value": GOOD["wechat_app_secret"]},
    )
    assert saved.status_code == 200
    assert 'data-setting="wechat_app_secret" data-source="console"' in saved.text
    assert GOOD["wechat_app_secret"] not in saved.text  # never shown again
