"""WeChat plain mode: refused in production, and a captured signature cannot carry another body: the
timestamp and nonce of every verified request are remembered for the replay window (in Redis when it is
configured, in the process otherwise)."""

from __future__ import annotations

import base64
import os
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.models import ConsentEvent, Direction, Message
from backend.security.ephemeral import MemoryEphemeral, RedisEphemeral
from bots.domain import Channel
from channels.base import ReplayedRequest
from channels.wechat_inbound import parse_webhook
from tests import factories
from tests.backend.web.test_hooks import WECHAT_APP, WECHAT_TOKEN, _wechat_query, _wechat_text, twilio  # noqa: F401
from tests.channels.fake_twilio import FakeTwilio

REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")
KEYS = {
    "secret_key": "s" * 40,
    "data_key": base64.b64encode(bytes(32)).decode(),
    "database_url": "postgresql+psycopg://u@h/db",
    "public_url": "https://careloop.example.org",
    "wechat_app_id": WECHAT_APP,
    "wechat_token": WECHAT_TOKEN,
}


def _unsubscribe(openid: str, created: int) -> bytes:
    return (
        f"<xml><ToUserName>gh_hospital</ToUserName><FromUserName>{openid}</FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType>event</MsgType><Event>unsubscribe</Event></xml>"
    ).encode()


def test_production_refuses_plain_mode() -> None:
    with pytest.raises(ValidationError, match="plain mode"):
        Settings(env="production", **KEYS)  # type: ignore[arg-type]
    safe = Settings(env="production", wechat_encoding_aes_key="a" * 43, **KEYS)  # type: ignore[arg-type]
    assert safe.wechat_encoding_aes_key is not None
    assert Settings(env="development", **KEYS).wechat_token is not None  # type: ignore[arg-type]


def test_a_captured_signature_cannot_carry_another_body(
    twilio: FakeTwilio,  # noqa: F811
    client: TestClient,
    db: Session,
) -> None:
    patient = factories.patient(db, wechat_openid="o-bound")
    db.commit()
    now = int(time.time())
    query = _wechat_query(now, nonce="captured")
    hello = _wechat_text("o-bound", "hello", now, "9001")
    assert client.post("/hooks/wechat", params=query, content=hello).text == "success"
    forged = client.post("/hooks/wechat", params=query, content=_unsubscribe("o-bound", now))
    assert forged.status_code == 403
    again = client.post("/hooks/wechat", params=query, content=hello)  # WeChat's own retry
    assert again.status_code == 200 and again.text == "success"
    db.expire_all()
    assert db.scalars(sa.select(ConsentEvent).where(ConsentEvent.patient_id == patient.id)).all() == []
    inbound = db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND)).all()
    assert [m.text for m in inbound if m.channel is Channel.WECHAT] == ["hello"]


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_nonces_are_remembered_in_the_shared_store(store: str) -> None:
    memory = MemoryEphemeral()
    nonces = memory if store == "memory" else RedisEphemeral(REDIS_URL, memory)
    now = datetime.now(UTC)
    stamp = int(now.timestamp())
    nonce = f"n-{uuid.uuid4().hex}"  # Redis outlives the test: a nonce of its own
    query = _wechat_query(stamp, nonce=nonce)
    body = _wechat_text("o-1", "hi", stamp, "1")
    keys = {"token": WECHAT_TOKEN, "aes_key": None, "app_id": WECHAT_APP, "now": now, "nonces": nonces}
    assert parse_webhook(body, query, **keys) is not None  # type: ignore[arg-type]
    assert parse_webhook(body, query, **keys) is not None  # type: ignore[arg-type]
    with pytest.raises(ReplayedRequest):
        parse_webhook(_unsubscribe("o-1", stamp), query, **keys)  # type: ignore[arg-type]
    if store == "redis":
        assert memory.remember(f"wechat-nonce:{stamp}:{nonce}", "x", 10) is None  # it went to Redis
