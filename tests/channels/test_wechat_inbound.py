"""WeChat webhooks: signatures, safe-mode decryption, freshness, and the mapping of documented XML."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from bots.domain import Channel
from bots.messages import Inbound, InboundKind, MediaRef
from channels.base import DeliveryStatus, ForgedRequest, MalformedPayload, ReplayedRequest, StatusUpdate
from channels.wechat_inbound import event_id, parse_webhook, verify_url

TOKEN = "spamtest"
APP_ID = "wx2c2769f8efd9abc2"
NONCE = "1320562132"

# WeChat's published safe-mode example (the WXBizMsgCrypt sample; wechatpy tests against the same
# kind of vector): token, EncodingAESKey, appid, and a signed, encrypted text message.
SAMPLE_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2"
    "LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6u"
    "x5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJp"
    "XgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9"
    "GhglF2PE="
)


def sample_body(plaintext_content: str = "abcdteT") -> bytes:
    """The sample's body in "compatible" mode: a plaintext copy beside the signed Encrypt element."""
    return (
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
        "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{plaintext_content}]]></Content><MsgId>6054768590064713728</MsgId>"
        f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
    ).encode()


def sha1_signature(*values: str) -> str:
    return hashlib.sha1("".join(sorted(values)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def signed_query(timestamp: int | str, token: str = TOKEN) -> dict[str, str]:
    ts = str(timestamp)
    return {"signature": sha1_signature(token, ts, NONCE), "timestamp": ts, "nonce": NONCE, "openid": "x"}


def at(epoch: int, seconds_later: int = 3) -> datetime:
    return datetime.fromtimestamp(epoch, UTC) + timedelta(seconds=seconds_later)


def parse_plain(xml: str, created: int, *, now: datetime | None = None) -> Inbound | StatusUpdate | None:
    return parse_webhook(
        xml.encode(),
        signed_query(created + 1),
        token=TOKEN,
        aes_key=None,
        app_id=APP_ID,
        now=now or at(created),
    )


def event_xml(created: int, event: str, extra: str = "", sender: str = "oFromUserOpenid") -> str:
    return (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName><CreateTime>{created}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


# -- URL verification --------------------------------------------------------------------------------


def test_url_check_echoes_echostr_when_signed_with_our_token() -> None:
    sig = sha1_signature(TOKEN, "1409735669", NONCE)
    assert verify_url(token=TOKEN, signature=sig, timestamp="1409735669", nonce=NONCE, echostr="e42") == "e42"


def test_url_check_with_a_wrong_signature_is_forged() -> None:
    sig = sha1_signature("another-token", "1409735669", NONCE)
    with pytest.raises(ForgedRequest):
        verify_url(token=TOKEN, signature=sig, timestamp="1409735669", nonce=NONCE, echostr="e42")


# -- safe mode ------------------------------------------------------------------------------------------


def sample_query(**override: str) -> dict[str, str]:
    query = {
        "signature": sha1_signature(TOKEN, SAMPLE_TIMESTAMP, NONCE),
        "timestamp": SAMPLE_TIMESTAMP,
        "nonce": NONCE,
        "encrypt_type": "aes",
        "msg_signature": SAMPLE_MSG_SIGNATURE,
    }
    return query | override


def parse_sample(
    body: bytes, query: dict[str, str], *, app_id: str = APP_ID
) -> Inbound | StatusUpdate | None:
    return parse_webhook(
        body, query, token=TOKEN, aes_key=SAMPLE_AES_KEY, app_id=app_id, now=at(int(SAMPLE_TIMESTAMP))
    )


def test_wechats_published_safe_mode_sample_decrypts_to_the_text_message() -> None:
    inbound = parse_sample(sample_body(), sample_query())
    assert inbound == Inbound(
        channel=Channel.WECHAT,
        sender="oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        provider_message_id="6054768590064713728",
        received_at=datetime(2014, 9, 3, 9, 14, 28, tzinfo=UTC),
        text="abcdteT",
    )


def test_safe_mode_reads_the_signed_ciphertext_not_the_unsigned_plaintext_beside_it() -> None:
    inbound = parse_sample(sample_body(plaintext_content="forged words"), sample_query())
    assert isinstance(inbound, Inbound)
    assert inbound.text == "abcdteT"


def test_safe_mode_with_a_wrong_msg_signature_is_forged() -> None:
    with pytest.raises(ForgedRequest):
        parse_sample(sample_body(), sample_query(msg_signature="0" * 40))


def test_safe_mode_without_msg_signature_is_forged() -> None:
    query = sample_query()
    del query["msg_signature"]
    with pytest.raises(ForgedRequest):
        parse_sample(sample_body(), query)


def test_safe_mode_ciphertext_tampered_with_is_forged() -> None:
    body = sample_body().replace(b"hyzAe4", b"hyzAe5")
    with pytest.raises(ForgedRequest):
        parse_sample(body, sample_query())


def test_safe_mode_message_encrypted_for_another_app_is_forged() -> None:
    with pytest.raises(ForgedRequest):
        parse_sample(sample_body(), sample_query(), app_id="wx0000000000000000")


def test_an_unencrypted_request_to_a_safe_mode_account_is_refused() -> None:
    doc_text = event_xml(1409735668, "unsubscribe")
    with pytest.raises(ForgedRequest):
        parse_webhook(
            doc_text.encode(),
            signed_query(SAMPLE_TIMESTAMP),
            token=TOKEN,
            aes_key=SAMPLE_AES_KEY,
            app_id=APP_ID,
            now=at(int(SAMPLE_TIMESTAMP)),
        )


def test_an_encrypted_request_without_a_configured_key_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        parse_webhook(
            sample_body(),
            sample_query(),
            token=TOKEN,
            aes_key=None,
            app_id=APP_ID,
            now=at(int(SAMPLE_TIMESTAMP)),
        )


def test_safe_mode_events_round_trip_through_wechatpys_encryption() -> None:
    created = 1700000000
    plain = event_xml(created, "subscribe", "<EventKey><![CDATA[qrscene_ward7]]></EventKey>")
    crypto = WeChatCrypto(TOKEN, SAMPLE_AES_KEY, APP_ID)
    envelope = crypto.encrypt_message(plain, NONCE, str(created))
    sig = xmltodict.parse(envelope)["xml"]["MsgSignature"]
    inbound = parse_webhook(
        envelope.encode(),
        {"timestamp": str(created), "nonce": NONCE, "encrypt_type": "aes", "msg_signature": sig},
        token=TOKEN,
        aes_key=SAMPLE_AES_KEY,
        app_id=APP_ID,
        now=at(created),
    )
    assert isinstance(inbound, Inbound)
    assert (inbound.kind, inbound.scene) == (InboundKind.FOLLOWED, "ward7")


# -- plain mode signature, freshness, shape -----------------------------------------------------------

TEXT_XML = """<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[this is a test]]></Content>
  <MsgId>1234567890123456</MsgId>
</xml>"""


def test_plain_mode_with_a_wrong_signature_is_forged() -> None:
    with pytest.raises(ForgedRequest):
        parse_webhook(
            TEXT_XML.encode(),
            signed_query(1348831861, token="not-our-token"),
            token=TOKEN,
            aes_key=None,
            app_id=APP_ID,
            now=at(1348831860),
        )


@pytest.mark.parametrize("missing", ["signature", "timestamp", "nonce"])
def test_plain_mode_without_a_signed_field_is_forged(missing: str) -> None:
    query = signed_query(1348831861)
    del query[missing]
    with pytest.raises(ForgedRequest):
        parse_webhook(TEXT_XML.encode(), query, token=TOKEN, aes_key=None, app_id=APP_ID, now=at(1348831860))


def test_a_message_created_more_than_five_minutes_ago_is_a_replay() -> None:
    with pytest.raises(ReplayedRequest):
        parse_plain(TEXT_XML, 1348831860, now=at(1348831860, seconds_later=301))


def test_a_message_exactly_five_minutes_old_is_still_accepted() -> None:
    assert parse_plain(TEXT_XML, 1348831860, now=at(1348831860, seconds_later=300)) is not None


def test_an_old_signed_timestamp_is_a_replay_even_with_a_fresh_create_time() -> None:
    now = at(1348831860)
    with pytest.raises(ReplayedRequest):
        parse_webhook(
            TEXT_XML.encode(),
            signed_query(1348831860 - 600),
            token=TOKEN,
            aes_key=None,
            app_id=APP_ID,
            now=now,
        )


def test_a_timestamp_far_in_the_future_is_refused_too() -> None:
    with pytest.raises(ReplayedRequest):
        parse_plain(TEXT_XML, 1348831860, now=at(1348831860, seconds_later=-400))


@pytest.mark.parametrize(
    "body",
    [
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName>",
        "this is not xml",
        "",
        "<notxml><A>1</A></notxml>",
        "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>",  # no CreateTime
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><CreateTime>&a;</CreateTime></xml>',
    ],
    ids=["truncated", "text", "empty", "wrong-root", "no-createtime", "entity"],
)
def test_a_signed_body_that_is_not_wechat_xml_is_malformed(body: str) -> None:
    with pytest.raises(MalformedPayload):
        parse_plain(body, 1348831860)


def test_a_message_without_msg_id_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        parse_plain(TEXT_XML.replace("<MsgId>1234567890123456</MsgId>", ""), 1348831860)


# -- mapping of WeChat's documented payloads ----------------------------------------------------------


def test_text_message_becomes_a_message_with_its_text_and_msg_id() -> None:
    assert parse_plain(TEXT_XML, 1348831860) == Inbound(
        channel=Channel.WECHAT,
        sender="fromUser",
        provider_message_id="1234567890123456",
        received_at=datetime.fromtimestamp(1348831860, UTC),
        text="this is a test",
    )


def test_a_tap_on_a_msgmenu_option_becomes_that_choice() -> None:
    xml = (
        "<xml><ToUserName><![CDATA[ToUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName>"
        "<CreateTime>1500000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[满意]]></Content><MsgId>1234567890123456</MsgId>"
        "<bizmsgmenuid>101</bizmsgmenuid></xml>"
    )
    inbound = parse_plain(xml, 1500000000)
    assert isinstance(inbound, Inbound)
    assert (inbound.kind, inbound.choice, inbound.text) == (InboundKind.MESSAGE, "101", "满意")


def test_image_message_carries_its_picture_url_and_media_id() -> None:
    xml = (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName>"
        "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        "<PicUrl><![CDATA[http://mmbiz.qpic.cn/mmbiz/this-is-a-url/0]]></PicUrl>"
        "<MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId></xml>"
    )
    inbound = parse_plain(xml, 1348831860)
    assert isinstance(inbound, Inbound)
    assert inbound.media == (
        MediaRef("http://mmbiz.qpic.cn/mmbiz/this-is-a-url/0", "image/jpeg", "media_id"),
    )
    assert (inbound.text, inbound.provider_message_id) == ("", "1234567890123456")


VOICE_XML = (
    "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName>"
    "<CreateTime>1357290913</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
    "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format>{recognition}"
    "<MsgId>1234567890123456</MsgId></xml>"
)


def test_voice_message_carries_the_recognised_text_and_the_amr_media() -> None:
    xml = VOICE_XML.format(recognition="<Recognition><![CDATA[腾讯微信团队]]></Recognition>")
    inbound = parse_plain(xml, 1357290913)
    assert isinstance(inbound, Inbound)
    assert inbound.text == "腾讯微信团队"
    assert inbound.media == (MediaRef("", "audio/amr", "media_id"),)


def test_voice_message_without_recognition_has_no_text() -> None:
    inbound = parse_plain(VOICE_XML.format(recognition=""), 1357290913)
    assert isinstance(inbound, Inbound)
    assert (inbound.text, inbound.media[0].mime_type) == ("", "audio/amr")


def test_voice_in_speex_gets_the_speex_mime_type() -> None:
    inbound = parse_plain(VOICE_XML.format(recognition="").replace("amr", "speex"), 1357290913)
    assert isinstance(inbound, Inbound)
    assert inbound.media[0].mime_type == "audio/speex"


def test_plain_follow_is_followed_without_a_scene_and_deduplicates_on_sender_time_event() -> None:
    inbound = parse_plain(event_xml(123456789, "subscribe", sender="FromUser"), 123456789)
    assert inbound == Inbound(
        channel=Channel.WECHAT,
        sender="FromUser",
        provider_message_id=event_id("FromUser", "123456789", "subscribe"),
        received_at=datetime.fromtimestamp(123456789, UTC),
        kind=InboundKind.FOLLOWED,
    )


def test_an_events_id_holds_no_openid_and_a_follow_starts_a_conversation() -> None:
    follow = event_id("oFromUserOpenid", "123456789", "subscribe")
    assert "oFromUserOpenid" not in follow and follow.startswith("start:") and follow.endswith(":subscribe")
    assert event_id("oFromUserOpenid", "123456789", "subscribe") == follow  # a redelivery: the same id
    assert event_id("oOtherFollower", "123456789", "subscribe") != follow
    assert not event_id("oFromUserOpenid", "123456789", "SCAN").startswith("start:")


def test_follow_through_a_qr_code_carries_the_scene_without_its_prefix() -> None:
    xml = event_xml(
        123456789,
        "subscribe",
        "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
    )
    inbound = parse_plain(xml, 123456789)
    assert isinstance(inbound, Inbound)
    assert (inbound.kind, inbound.scene) == (InboundKind.FOLLOWED, "123123")


def test_unfollow_is_unfollowed() -> None:
    inbound = parse_plain(event_xml(123456789, "unsubscribe", sender="FromUser"), 123456789)
    assert isinstance(inbound, Inbound)
    assert (inbound.kind, inbound.sender, inbound.provider_message_id) == (
        InboundKind.UNFOLLOWED,
        "FromUser",
        event_id("FromUser", "123456789", "unsubscribe"),
    )


def test_a_follower_scanning_a_qr_code_is_scanned_with_the_scene() -> None:
    xml = event_xml(
        123456789, "SCAN", "<EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"
    )
    inbound = parse_plain(xml, 123456789)
    assert isinstance(inbound, Inbound)
    assert (inbound.kind, inbound.scene) == (InboundKind.SCANNED, "SCENE_VALUE")
    assert inbound.provider_message_id == event_id("oFromUserOpenid", "123456789", "SCAN")


def test_a_menu_click_is_a_message_choosing_the_event_key() -> None:
    inbound = parse_plain(
        event_xml(123456789, "CLICK", "<EventKey><![CDATA[EVENTKEY]]></EventKey>"), 123456789
    )
    assert isinstance(inbound, Inbound)
    assert (inbound.kind, inbound.choice, inbound.text) == (InboundKind.MESSAGE, "EVENTKEY", "")


@pytest.mark.parametrize(
    "extra",
    [
        ("VIEW", "<EventKey><![CDATA[www.qq.com]]></EventKey>"),
        (
            "LOCATION",
            "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
        ),
    ],
    ids=["view", "location"],
)
def test_events_careloop_does_not_act_on_are_ignored(extra: tuple[str, str]) -> None:
    assert parse_plain(event_xml(123456789, extra[0], extra[1]), 123456789) is None


def template_finish(status: str) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
        "<FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>"
        "<CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>"
        f"<Status><![CDATA[{status}]]></Status></xml>"
    )


def test_template_delivered_report_is_a_delivered_status_for_its_msgid() -> None:
    assert parse_plain(template_finish("success"), 1395658920) == StatusUpdate(
        provider_message_id="200163836",
        status=DeliveryStatus.DELIVERED,
        at=datetime.fromtimestamp(1395658920, UTC),
    )


def test_template_blocked_by_the_user_is_failed_and_marks_the_address_unreachable() -> None:
    update = parse_plain(template_finish("failed:user block"), 1395658920)
    assert isinstance(update, StatusUpdate)
    assert (update.status, update.error_code, update.invalid_address) == (
        DeliveryStatus.FAILED,
        "user block",
        True,
    )


def test_template_failed_in_wechats_system_is_failed_without_blaming_the_address() -> None:
    update = parse_plain(template_finish("failed: system failed"), 1395658920)
    assert isinstance(update, StatusUpdate)
    assert (update.status, update.error_code, update.invalid_address) == (
        DeliveryStatus.FAILED,
        "system failed",
        False,
    )
