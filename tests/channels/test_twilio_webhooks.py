"""Twilio webhooks: signatures (the documented example, proxies), incoming SMS/WhatsApp, status callbacks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bots.domain import Channel
from bots.messages import MediaRef
from channels.base import DeliveryStatus, ForgedRequest, MalformedPayload
from channels.twilio_webhooks import parse_twilio_message, parse_twilio_status, verify_twilio
from tests.channels.fake_twilio import incoming_sms, incoming_whatsapp, sign

# Twilio's worked example ("Validating requests", twilio.com/docs/usage/security): URL, params, token
# and the signature Twilio documents for them.
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_TOKEN = "12345"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
# The current docs page uses other numbers in the same example.
DOC_PARAMS_NEW = DOC_PARAMS | {"Caller": "+14158675310", "From": "+14158675310"}
DOC_SIGNATURE_NEW = "GvWf1cFY/Q7PnoempGyD5oXAezc="

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC_URL = "https://care.example.org/channels/twilio/sms"
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_twilios_documented_example_verifies() -> None:
    verify_twilio(DOC_URL, DOC_PARAMS, DOC_SIGNATURE, DOC_TOKEN)
    verify_twilio(DOC_URL, DOC_PARAMS_NEW, DOC_SIGNATURE_NEW, DOC_TOKEN)


def test_the_test_helper_signs_like_twilio() -> None:
    assert sign(DOC_URL, DOC_PARAMS, DOC_TOKEN) == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("url", "params", "signature", "token"),
    [
        (DOC_URL, DOC_PARAMS | {"Digits": "9999"}, DOC_SIGNATURE, DOC_TOKEN),  # a param changed
        (DOC_URL, DOC_PARAMS | {"Extra": "x"}, DOC_SIGNATURE, DOC_TOKEN),  # a param added
        (DOC_URL, {k: v for k, v in DOC_PARAMS.items() if k != "To"}, DOC_SIGNATURE, DOC_TOKEN),  # removed
        (DOC_URL.replace("foo=1", "foo=2"), DOC_PARAMS, DOC_SIGNATURE, DOC_TOKEN),  # another URL
        (DOC_URL, DOC_PARAMS, DOC_SIGNATURE, "54321"),  # another account's token
        (DOC_URL, DOC_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ", DOC_TOKEN),  # truncated
        (DOC_URL, DOC_PARAMS, "", DOC_TOKEN),  # empty header
        (DOC_URL, DOC_PARAMS, None, DOC_TOKEN),  # no header
        (DOC_URL, DOC_PARAMS, DOC_SIGNATURE, ""),  # no token configured: fail closed
    ],
)
def test_a_forged_or_missing_signature_is_refused(
    url: str, params: dict[str, str], signature: str | None, token: str
) -> None:
    with pytest.raises(ForgedRequest):
        verify_twilio(url, params, signature, token)


def test_behind_a_proxy_the_public_url_verifies_and_the_internal_url_does_not() -> None:
    params = incoming_sms("+8613800138000", "1")
    signature = sign(PUBLIC_URL, params, TOKEN)  # Twilio signs the URL it was configured with
    verify_twilio(PUBLIC_URL, params, signature, TOKEN)
    with pytest.raises(ForgedRequest):  # what the app sees behind a TLS-terminating proxy
        verify_twilio("http://10.0.0.5:8000/channels/twilio/sms", params, signature, TOKEN)


def test_a_default_port_in_the_public_url_does_not_matter() -> None:
    params = incoming_sms()
    signature = sign(PUBLIC_URL, params, TOKEN)
    verify_twilio("https://care.example.org:443/channels/twilio/sms", params, signature, TOKEN)


def test_an_incoming_sms_becomes_an_sms_inbound() -> None:
    params = incoming_sms("+8613800138000", "我已经好多了", sid="SM" + "a" * 32)
    inbound = parse_twilio_message(params, now=NOW)
    assert inbound.channel is Channel.SMS
    assert inbound.sender == "+8613800138000"
    assert inbound.provider_message_id == "SM" + "a" * 32
    assert inbound.text == "我已经好多了"
    assert inbound.choice is None
    assert inbound.media == ()
    assert inbound.received_at == NOW


def test_received_at_defaults_to_now_in_utc() -> None:
    inbound = parse_twilio_message(incoming_sms())
    assert inbound.received_at.tzinfo is UTC
    assert abs((datetime.now(UTC) - inbound.received_at).total_seconds()) < 5


def test_an_mms_carries_its_media_with_twilio_media_sids() -> None:
    sid = "MM" + "b" * 32
    base = f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Messages/{sid}/Media"
    params = incoming_sms("+14155550100", "", sid=sid) | {
        "NumMedia": "2",
        "MediaUrl0": f"{base}/ME{'1' * 32}",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": f"{base}/ME{'2' * 32}",
        "MediaContentType1": "application/pdf",
    }
    inbound = parse_twilio_message(params)
    assert inbound.media == (
        MediaRef(f"{base}/ME{'1' * 32}", "image/jpeg", "ME" + "1" * 32),
        MediaRef(f"{base}/ME{'2' * 32}", "application/pdf", "ME" + "2" * 32),
    )
    assert inbound.text == ""


def test_a_whatsapp_message_is_told_apart_by_the_from_prefix_and_loses_it() -> None:
    inbound = parse_twilio_message(incoming_whatsapp("+84912345678", "Tôi khỏe"))
    assert inbound.channel is Channel.WHATSAPP
    assert inbound.sender == "+84912345678"
    assert inbound.text == "Tôi khỏe"
    assert inbound.choice is None


def test_a_whatsapp_quick_reply_tap_gives_the_choice_payload() -> None:
    params = incoming_whatsapp("+84912345678", "Có", button_payload="q3:yes")
    inbound = parse_twilio_message(params)
    assert inbound.choice == "q3:yes"
    assert inbound.text == "Có"


def test_a_button_payload_on_sms_is_ignored() -> None:
    params = incoming_sms() | {"ButtonPayload": "q3:yes"}
    assert parse_twilio_message(params).choice is None


@pytest.mark.parametrize(
    "change",
    [
        {"MessageSid": ""},
        {"MessageSid": "not-a-sid"},
        {"From": ""},
        {"From": "13800138000"},  # not E.164
        {"From": "messenger:12345"},
        {"NumMedia": "x"},
        {"NumMedia": "11"},
        {"NumMedia": "1"},  # without MediaUrl0
        {"NumMedia": "1", "MediaUrl0": "http://insecure.example/x", "MediaContentType0": "image/png"},
    ],
)
def test_an_incoming_message_missing_what_twilio_documents_is_malformed(change: dict[str, str]) -> None:
    params = {k: v for k, v in (incoming_sms() | change).items() if v != ""}
    with pytest.raises(MalformedPayload):
        parse_twilio_message(params)


def _status(status: str, error_code: str | None = None) -> dict[str, str]:
    # Twilio's documented status callback for an SMS (RawDlrDoneDate on delivered/undelivered).
    params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": "SM" + "c" * 32,
        "MessageStatus": status,
        "SmsSid": "SM" + "c" * 32,
        "SmsStatus": status,
        "To": "+8613800138000",
    }
    if status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = "2503040506"
    if error_code:
        params["ErrorCode"] = error_code
    return params


@pytest.mark.parametrize(
    ("twilio_status", "expected"),
    [
        ("accepted", DeliveryStatus.QUEUED),
        ("queued", DeliveryStatus.QUEUED),
        ("sending", DeliveryStatus.QUEUED),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.READ),
        ("failed", DeliveryStatus.FAILED),
        ("undelivered", DeliveryStatus.UNDELIVERED),
        ("canceled", DeliveryStatus.FAILED),
    ],
)
def test_twilio_statuses_map_to_delivery_statuses(twilio_status: str, expected: DeliveryStatus) -> None:
    update = parse_twilio_status(_status(twilio_status), now=NOW)
    assert update.provider_message_id == "SM" + "c" * 32
    assert update.status is expected
    assert update.error_code is None
    assert update.invalid_address is False
    assert update.at == NOW


@pytest.mark.parametrize(
    ("code", "invalid"),
    [
        ("30003", False),  # unreachable handset (switched off): may work later
        ("30004", False),  # blocked
        ("30005", True),  # unknown destination handset
        ("30006", True),  # landline or unreachable carrier
        ("30007", False),  # filtered by the carrier
        ("30008", False),  # unknown error
        ("21211", True),
        ("21614", True),
        ("63003", True),  # WhatsApp: not a WhatsApp user
        ("63016", False),  # WhatsApp: window closed
    ],
)
def test_an_undelivered_status_carries_its_error_code_and_whether_the_number_is_dead(
    code: str, invalid: bool
) -> None:
    update = parse_twilio_status(_status("undelivered", code))
    assert update.status is DeliveryStatus.UNDELIVERED
    assert update.error_code == code
    assert update.invalid_address is invalid


def test_a_whatsapp_read_receipt_is_read() -> None:
    params = _status("read") | {"From": "whatsapp:+15005550006", "To": "whatsapp:+84912345678"}
    assert parse_twilio_status(params).status is DeliveryStatus.READ


@pytest.mark.parametrize(
    "change",
    [
        {"MessageSid": None},
        {"MessageSid": "x"},
        {"MessageStatus": None, "SmsStatus": None},
        {"MessageStatus": "exploded", "SmsStatus": "exploded"},
        {"MessageStatus": "received", "SmsStatus": "received"},  # an inbound status, not a delivery
        {"ErrorCode": "abc"},
    ],
)
def test_a_status_callback_missing_what_twilio_documents_is_malformed(change: dict[str, str | None]) -> None:
    params = {k: v for k, v in (_status("delivered") | change).items() if v is not None}
    with pytest.raises(MalformedPayload):
        parse_twilio_status(params)
