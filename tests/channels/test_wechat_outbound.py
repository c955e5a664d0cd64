"""The WeChat sender and API helpers against a real local HTTP server playing WeChat (fake_wechat)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from bots.messages import Choice, Choices, Link, Outbound, Text
from channels.base import Delivery, DeliveryStatus, SendFailed, SendResult, TemplateRef
from channels.wechat_outbound import (
    WeChatApiError,
    WeChatSender,
    create_qr_code,
    fetch_media,
    make_client,
    oauth_authorize_url,
    oauth_openid,
)
from tests.channels.fake_wechat import CUSTOM_SEND, QRCODE_CREATE, TEMPLATE_SEND, TOKEN_PATH, FakeWeChat

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the openid in WeChat's own examples
OTHER_OPENID = "oia2TjuEGTNoeX76QEjQNrcURxG8"
REDIS_URL = os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat() as server:
        yield server
        assert server.problems == []  # every request we sent was shaped as WeChat documents


def client_for(fake: FakeWeChat, *, timeout: float = 2.0) -> Any:
    return make_client(fake.app_id, fake.secret, api_root=fake.base_url, redis_url=None, timeout=timeout)


@pytest.fixture
def sender(fake: FakeWeChat) -> WeChatSender:
    return WeChatSender(client_for(fake))


def delivery(*parts: Any, to: str = OPENID, **kw: Any) -> Delivery:
    return Delivery(reference="outbox-17", to=to, outbound=Outbound(tuple(parts)), lang="zh", **kw)


FOLLOWUP = TemplateRef(
    key="followup_invite",
    provider_id="ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
    variables={"first": "复诊提醒", "keyword1": "2024-05-01"},
    url="https://careloop.example/f/abc",
)


# -- inside the 48-hour window ----------------------------------------------------------------------


def test_all_parts_of_one_outbound_go_out_as_one_text_message(fake: FakeWeChat, sender: WeChatSender) -> None:
    result = sender.send(
        delivery(
            Text("您好，请完成出院随访。"),
            Link("https://careloop.example/f/abc?x=1&y=2", "打开问卷"),
            Text("谢谢"),
        )
    )
    [call] = fake.calls()
    assert call.path == CUSTOM_SEND
    assert call.body == {
        "touser": OPENID,
        "msgtype": "text",
        "text": {
            "content": '您好，请完成出院随访。\n<a href="https://careloop.example/f/abc?x=1&y=2">打开问卷</a>\n谢谢'
        },
    }
    assert result == SendResult(provider_message_ids=("outbox-17",), status=DeliveryStatus.SENT)


def test_choices_go_out_as_one_msgmenu_with_head_and_tail(fake: FakeWeChat, sender: WeChatSender) -> None:
    sender.send(
        delivery(
            Text("您对本次服务是否满意呢？"),
            Choices((Choice("satisfied", "满意"), Choice("unsatisfied", "不满意"))),
            Text("欢迎再次光临"),
        )
    )
    [call] = fake.calls()
    assert call.body == {
        "touser": OPENID,
        "msgtype": "msgmenu",
        "msgmenu": {
            "head_content": "您对本次服务是否满意呢？",
            "list": [{"id": "satisfied", "content": "满意"}, {"id": "unsatisfied", "content": "不满意"}],
            "tail_content": "欢迎再次光临",
        },
    }


def test_a_message_with_nothing_to_say_fails_permanently_without_a_request(
    fake: FakeWeChat, sender: WeChatSender
) -> None:
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("  ")))
    assert (err.value.permanent, err.value.code) == (True, "empty")
    assert fake.requests == []


# -- outside the window ----------------------------------------------------------------------------


def test_outside_the_window_the_template_goes_out_and_its_msgid_is_the_provider_id(
    fake: FakeWeChat, sender: WeChatSender
) -> None:
    result = sender.send(delivery(Text("ignored outside the window"), window_open=False, template=FOLLOWUP))
    [call] = fake.calls()
    assert call.path == TEMPLATE_SEND
    assert call.body == {
        "touser": OPENID,
        "template_id": FOLLOWUP.provider_id,
        "url": "https://careloop.example/f/abc",
        "data": {"first": {"value": "复诊提醒"}, "keyword1": {"value": "2024-05-01"}},
        "client_msg_id": "outbox-17",  # WeChat's de-duplication id: our reference
    }
    assert result == SendResult(provider_message_ids=("200228332",), status=DeliveryStatus.QUEUED)


def test_a_template_without_a_url_sends_no_url_field(fake: FakeWeChat, sender: WeChatSender) -> None:
    template = TemplateRef(key="k", provider_id="tpl-1", variables={"first": "x"})
    sender.send(delivery(Text("x"), window_open=False, template=template))
    assert "url" not in fake.calls()[0].body


def test_window_closed_and_no_template_fails_permanently_without_any_request(
    fake: FakeWeChat, sender: WeChatSender
) -> None:
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("hello"), window_open=False))
    assert (err.value.permanent, err.value.window_closed, err.value.invalid_address) == (True, True, False)
    assert fake.requests == []  # not even a token fetch


# -- the access token ------------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_reused(fake: FakeWeChat, sender: WeChatSender) -> None:
    for _ in range(3):
        sender.send(delivery(Text("hi")))
    assert fake.token_issues == 1
    assert {c.query["access_token"] for c in fake.calls()} == {"FAKE_ACCESS_TOKEN_1"}
    [token_call] = fake.calls(TOKEN_PATH)
    assert token_call.query == {
        "grant_type": "client_credential",
        "appid": fake.app_id,
        "secret": fake.secret,
    }


def test_an_expired_token_is_refreshed_and_the_message_still_goes_once(
    fake: FakeWeChat, sender: WeChatSender
) -> None:
    sender.send(delivery(Text("first")))
    fake.expire_tokens()
    result = sender.send(delivery(Text("second")))
    assert result.status is DeliveryStatus.SENT
    assert fake.token_issues == 2
    assert [c.query["access_token"] for c in fake.calls()] == [
        "FAKE_ACCESS_TOKEN_1",
        "FAKE_ACCESS_TOKEN_1",  # answered 42001
        "FAKE_ACCESS_TOKEN_2",
    ]


def test_token_errors_twice_in_a_row_fail_transiently_and_leave_no_token_cached(
    fake: FakeWeChat, sender: WeChatSender
) -> None:
    fake.fail_next(errcode=42001, path=CUSTOM_SEND, times=2)
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("hi")))
    assert (err.value.permanent, err.value.code) == (False, "42001")
    assert len(fake.calls(CUSTOM_SEND)) == 2  # one retry, not wechatpy's unbounded recursion
    sender.send(delivery(Text("hi again")))
    assert fake.token_issues == 3


def test_a_wrong_app_secret_fails_permanently(fake: FakeWeChat) -> None:
    client = make_client(fake.app_id, "wrong", api_root=fake.base_url, redis_url=None, timeout=2)
    with pytest.raises(SendFailed) as err:
        WeChatSender(client).send(delivery(Text("hi")))
    assert (err.value.permanent, err.value.code) == (True, "40125")
    assert fake.calls() == []


@pytest.mark.redis
def test_workers_sharing_redis_share_one_token() -> None:
    prefix = f"careloop-test-wechat-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(REDIS_URL)
    try:
        with FakeWeChat() as fake:
            workers = [
                WeChatSender(
                    make_client(
                        fake.app_id,
                        fake.secret,
                        api_root=fake.base_url,
                        redis_url=REDIS_URL,
                        timeout=2,
                        redis_prefix=prefix,
                    )
                )
                for _ in range(2)
            ]
            for worker in workers * 2:
                worker.send(delivery(Text("hi")))
            assert fake.token_issues == 1
            assert len(fake.calls(CUSTOM_SEND)) == 4
            ttl = redis.ttl(f"{prefix}:{fake.app_id}_access_token")
            assert 0 < ttl <= 7200 - 300  # forgotten before WeChat retires it
    finally:
        for key in redis.scan_iter(f"{prefix}:*"):
            redis.delete(key)
        redis.close()


def test_a_sender_built_from_a_factory_builds_its_client_on_first_send(fake: FakeWeChat) -> None:
    built: list[Any] = []

    def factory() -> Any:
        built.append(client_for(fake))
        return built[-1]

    sender = WeChatSender(factory)
    assert built == []
    sender.send(delivery(Text("hi")))
    sender.send(delivery(Text("hi")))
    assert len(built) == 1


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "permanent", "invalid_address", "window_closed"),
    [
        (45015, True, False, True),  # response out of time limit
        (43004, True, True, False),  # require subscribe
        (40003, True, True, False),  # invalid openid
        (43019, True, True, False),  # in blacklist
        (-1, False, False, False),  # system busy
        (45009, False, False, False),  # api daily quota
        (45047, False, False, False),  # customer-service quota of this interaction
        (40001, False, False, False),  # token: retried once, then transient
        (48001, True, False, False),  # api unauthorized: anything else is permanent
        (40200, True, False, False),
    ],
)
def test_wechat_errcodes_map_to_the_documented_failure_kind(
    fake: FakeWeChat,
    sender: WeChatSender,
    errcode: int,
    permanent: bool,
    invalid_address: bool,
    window_closed: bool,
) -> None:
    fake.fail_always(errcode=errcode, path=CUSTOM_SEND)
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("hi")))
    failure = err.value
    assert (failure.permanent, failure.invalid_address, failure.window_closed, failure.code) == (
        permanent,
        invalid_address,
        window_closed,
        str(errcode),
    )


def test_a_template_errcode_maps_the_same_way(fake: FakeWeChat, sender: WeChatSender) -> None:
    fake.fail_next(errcode=43004, path=TEMPLATE_SEND)
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("x"), window_open=False, template=FOLLOWUP))
    assert err.value.invalid_address is True


@pytest.mark.parametrize(
    ("status", "permanent"), [(500, False), (502, False), (503, False), (429, False), (403, True)]
)
def test_http_errors_are_transient_when_5xx(
    fake: FakeWeChat, sender: WeChatSender, status: int, permanent: bool
) -> None:
    fake.fail_next(http_status=status)
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("hi")))
    assert (err.value.permanent, err.value.code) == (permanent, f"http_{status}")


def test_a_hanging_wechat_is_a_transient_timeout(fake: FakeWeChat) -> None:
    sender = WeChatSender(client_for(fake, timeout=0.2))
    sender.send(delivery(Text("warm up the token")))
    fake.fail_next(hang=2.0, path=CUSTOM_SEND)
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("hi")))
    assert (err.value.permanent, err.value.code) == (False, "timeout")


def test_a_hanging_token_endpoint_is_a_transient_timeout(fake: FakeWeChat) -> None:
    fake.fail_next(hang=2.0, path=TOKEN_PATH)
    with pytest.raises(SendFailed) as err:
        WeChatSender(client_for(fake, timeout=0.2)).send(delivery(Text("hi")))
    assert (err.value.permanent, err.value.code) == (False, "timeout")
    assert fake.calls(CUSTOM_SEND) == []


def test_an_unreachable_wechat_is_a_transient_connection_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client("wx1", "s", api_root=f"http://127.0.0.1:{port}", redis_url=None, timeout=1)
    with pytest.raises(SendFailed) as err:
        WeChatSender(client).send(delivery(Text("hi")))
    assert (err.value.permanent, err.value.code) == (False, "connection")


def test_a_failure_programmed_for_one_openid_leaves_others_alone(
    fake: FakeWeChat, sender: WeChatSender
) -> None:
    fake.fail_always(errcode=43004, openid=OTHER_OPENID)
    sender.send(delivery(Text("hi")))
    with pytest.raises(SendFailed) as err:
        sender.send(delivery(Text("hi"), to=OTHER_OPENID))
    assert err.value.invalid_address is True
    sender.send(delivery(Text("hi")))
    assert [c.openid for c in fake.calls()] == [OPENID, OTHER_OPENID, OPENID]


# -- QR codes, OAuth, media ------------------------------------------------------------------------


def test_a_permanent_qr_code_uses_a_string_scene_and_returns_the_ticket_url(fake: FakeWeChat) -> None:
    url = create_qr_code(client_for(fake), "ward-7", expire_seconds=None)
    [call] = fake.calls(QRCODE_CREATE)
    assert call.body == {
        "action_name": "QR_LIMIT_STR_SCENE",
        "action_info": {"scene": {"scene_str": "ward-7"}},
    }
    assert url.startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47joAAAAAAAAAASxodHRwOi8v")
    assert url.endswith("%3D%3D")  # the ticket is URL-quoted


def test_a_temporary_qr_code_carries_its_expiry(fake: FakeWeChat) -> None:
    create_qr_code(client_for(fake), "clinic-3", expire_seconds=604800)
    assert fake.calls(QRCODE_CREATE)[0].body == {
        "action_name": "QR_STR_SCENE",
        "expire_seconds": 604800,
        "action_info": {"scene": {"scene_str": "clinic-3"}},
    }


@pytest.mark.parametrize(("scene", "expire"), [("", None), ("x" * 65, None), ("ok", 0), ("ok", 2592001)])
def test_qr_codes_wechat_would_refuse_are_refused_before_any_request(
    fake: FakeWeChat, scene: str, expire: int | None
) -> None:
    with pytest.raises(ValueError):
        create_qr_code(client_for(fake), scene, expire_seconds=expire)
    assert fake.requests == []


def test_a_qr_code_failure_is_a_clear_api_error(fake: FakeWeChat) -> None:
    fake.fail_next(errcode=-1, path=QRCODE_CREATE)
    with pytest.raises(WeChatApiError) as err:
        create_qr_code(client_for(fake), "ward-7", expire_seconds=None)
    assert (err.value.code, err.value.transient) == ("-1", True)


def test_the_oauth_url_asks_silently_for_the_openid() -> None:
    url = oauth_authorize_url("wx520c15f417810387", "https://careloop.example/wx/cb?next=/f/1", "abc123")
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387"
        "&redirect_uri=https%3A%2F%2Fcareloop.example%2Fwx%2Fcb%3Fnext%3D%2Ff%2F1"
        "&response_type=code&scope=snsapi_base&state=abc123#wechat_redirect"
    )


def test_an_oauth_state_wechat_would_mangle_is_refused() -> None:
    with pytest.raises(ValueError):
        oauth_authorize_url("wx1", "https://careloop.example/cb", "a&b=c")


def test_an_oauth_code_is_exchanged_for_the_openid_once(fake: FakeWeChat) -> None:
    fake.oauth_codes["CODE1"] = OPENID
    assert oauth_openid(fake.app_id, fake.secret, "CODE1", api_root=fake.base_url, timeout=2) == OPENID
    [call] = fake.calls("/sns/oauth2/access_token")
    assert call.query == {
        "appid": fake.app_id,
        "secret": fake.secret,
        "code": "CODE1",
        "grant_type": "authorization_code",
    }
    with pytest.raises(WeChatApiError) as err:
        oauth_openid(fake.app_id, fake.secret, "CODE1", api_root=fake.base_url, timeout=2)
    assert (err.value.code, err.value.transient) == ("40029", False)


def test_a_hanging_oauth_exchange_times_out_transiently(fake: FakeWeChat) -> None:
    fake.oauth_codes["CODE1"] = OPENID
    fake.fail_next(hang=2.0, path="/sns/oauth2/access_token")
    with pytest.raises(WeChatApiError) as err:
        oauth_openid(fake.app_id, fake.secret, "CODE1", api_root=fake.base_url, timeout=0.2)
    assert (err.value.code, err.value.transient) == ("timeout", True)


def test_media_is_fetched_with_its_mime_type(fake: FakeWeChat) -> None:
    fake.media["MEDIA1"] = (b"#!AMR\n\x00\x01\x02", "audio/amr")
    assert fetch_media(client_for(fake), "MEDIA1") == (b"#!AMR\n\x00\x01\x02", "audio/amr")
    assert fake.calls("/cgi-bin/media/get")[0].query["media_id"] == "MEDIA1"


def test_unknown_media_is_a_permanent_api_error(fake: FakeWeChat) -> None:
    with pytest.raises(WeChatApiError) as err:
        fetch_media(client_for(fake), "NOPE")
    assert (err.value.code, err.value.transient) == ("40007", False)
