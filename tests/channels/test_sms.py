"""SMS: rendering and numbered replies; Twilio and the generic gateway against a real local fake server."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from bots.messages import Choice, Choices, Link, MediaRef, Outbound, Text
from channels.base import (
    Delivery,
    DeliveryStatus,
    ForgedRequest,
    MalformedPayload,
    SendFailed,
    StatusUpdate,
    TemplateRef,
)
from channels.sms import (
    HttpGatewaySms,
    TwilioSms,
    gateway_signature,
    numbered_choice,
    parse_gateway_callback,
    render_sms,
)
from channels.twilio_webhooks import parse_twilio_status, verify_twilio
from tests.channels.fake_twilio import FakeTwilio

SENDER = "+15005550006"
SERVICE = "MG" + "5" * 32
TO = "+8613800138000"
CALLBACK = "https://care.example.org/channels/twilio/status?ref=42"

QUESTION = Outbound(
    (
        Text("您今天感觉如何？"),
        Choices((Choice("better", "好多了"), Choice("same", "差不多"), Choice("worse", "更差了"))),
        Link("https://care.example.org/f/abc", "填写问卷"),
    )
)


def delivery(outbound: Outbound = QUESTION, to: str = TO, callback: str | None = CALLBACK) -> Delivery:
    return Delivery(reference="outbox-42", to=to, outbound=outbound, lang="zh-CN", status_callback=callback)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


def twilio_sms(fake: FakeTwilio, sender: str = SENDER, timeout: float = 2.0) -> TwilioSms:
    return TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        sender=sender,
        api_base=fake.base_url,
        timeout=timeout,
    )


def gateway(fake: FakeTwilio, timeout: float = 2.0, sender: str | None = None) -> HttpGatewaySms:
    return HttpGatewaySms(url=fake.gateway_url, token=fake.gateway_token, timeout=timeout, sender=sender)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- rendering ---------------------------------------------------------------------------------------


def test_choices_render_as_numbered_lines_and_links_as_label_colon_url() -> None:
    assert render_sms(QUESTION) == (
        "您今天感觉如何？\n1. 好多了\n2. 差不多\n3. 更差了\n填写问卷: https://care.example.org/f/abc"
    )


def test_numbers_run_on_across_several_choice_groups() -> None:
    outbound = Outbound(
        (Choices((Choice("a", "A"),)), Text("or"), Choices((Choice("b", "B"), Choice("c", "C"))))
    )
    assert render_sms(outbound) == "1. A\nor\n2. B\n3. C"
    assert numbered_choice("3", outbound) == "c"


def test_media_renders_as_its_url_and_a_link_without_label_as_the_url() -> None:
    outbound = Outbound(
        (MediaRef("https://cdn.example.org/a.png", "image/png"), Link("https://x.example", ""))
    )
    assert render_sms(outbound) == "https://cdn.example.org/a.png\nhttps://x.example"
    assert render_sms(outbound, with_media=False) == "https://x.example"


@pytest.mark.parametrize(
    ("reply", "payload"),
    [("1", "better"), (" 2 ", "same"), ("3.", "worse"), ("３", "worse"), ("#1", "better"), ("(2)", "same")],
)
def test_a_numbered_reply_maps_to_its_choice_payload(reply: str, payload: str) -> None:
    assert numbered_choice(reply, QUESTION) == payload


def test_a_numbered_reply_maps_through_the_stored_outbox_json() -> None:
    stored = json.loads(json.dumps(QUESTION.to_json()))  # as the outbox keeps it
    assert numbered_choice("2", stored) == "same"


@pytest.mark.parametrize("reply", ["0", "4", "12", "1 and 2", "好多了", "", "one"])
def test_anything_else_is_not_a_numbered_choice(reply: str) -> None:
    assert numbered_choice(reply, QUESTION) is None


def test_a_message_without_choices_has_no_numbered_choice() -> None:
    assert numbered_choice("1", Outbound((Text("hello"),))) is None


# -- Twilio --------------------------------------------------------------------------------------------


def test_twilio_receives_exactly_the_fields_we_expect(fake: FakeTwilio) -> None:
    result = twilio_sms(fake).send(delivery())
    [sent] = fake.messages
    assert sent.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert sent.params == {"To": TO, "From": SENDER, "Body": render_sms(QUESTION), "StatusCallback": CALLBACK}
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert result.provider_message_ids == (sent.sid,)
    assert result.status is DeliveryStatus.QUEUED


def test_a_messaging_service_sender_goes_as_messaging_service_sid(fake: FakeTwilio) -> None:
    twilio_sms(fake, sender=SERVICE).send(delivery(callback=None))
    assert fake.messages[-1].params == {
        "To": TO,
        "MessagingServiceSid": SERVICE,
        "Body": render_sms(QUESTION),
    }


def test_the_status_callback_twilio_posts_back_verifies_and_parses(fake: FakeTwilio) -> None:
    result = twilio_sms(fake).send(delivery())
    url, params, signature = fake.status_callback(result.provider_message_ids[0], "delivered")
    verify_twilio(url, params, signature, fake.auth_token)
    update = parse_twilio_status(params)
    assert (update.provider_message_id, update.status) == (
        result.provider_message_ids[0],
        DeliveryStatus.DELIVERED,
    )


@pytest.mark.parametrize("code", [21211, 21612, 21614])
def test_an_invalid_number_error_marks_the_address_invalid(fake: FakeTwilio, code: int) -> None:
    fake.fail_for(TO, code=code)
    with pytest.raises(SendFailed) as failed:
        twilio_sms(fake).send(delivery())
    assert failed.value.invalid_address and failed.value.permanent
    assert failed.value.code == str(code)


def test_an_unsubscribed_recipient_is_permanent_but_not_an_invalid_number(fake: FakeTwilio) -> None:
    fake.fail_next(code=21610)
    with pytest.raises(SendFailed) as failed:
        twilio_sms(fake).send(delivery())
    assert failed.value.permanent and not failed.value.invalid_address
    assert failed.value.code == "21610"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 21408), (400, 21617), (401, 20003), (403, None), (404, 20404)],
)
def test_other_client_errors_are_permanent(fake: FakeTwilio, status: int, code: int | None) -> None:
    fake.fail_next(status=status, code=code)
    with pytest.raises(SendFailed) as failed:
        twilio_sms(fake).send(delivery())
    assert failed.value.permanent and not failed.value.invalid_address


def test_wrong_credentials_are_permanent(fake: FakeTwilio) -> None:
    sms = TwilioSms(
        account_sid=fake.account_sid, auth_token="wrong", sender=SENDER, api_base=fake.base_url, timeout=2
    )
    with pytest.raises(SendFailed) as failed:
        sms.send(delivery())
    assert failed.value.permanent and failed.value.code == "20003"


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, None), (502, None), (503, None)])
def test_rate_limits_and_server_errors_are_transient(fake: FakeTwilio, status: int, code: int | None) -> None:
    fake.fail_next(status=status, code=code)
    sms = twilio_sms(fake)
    with pytest.raises(SendFailed) as failed:
        sms.send(delivery())
    assert not failed.value.permanent
    assert sms.send(delivery()).provider_message_ids  # the next try goes through


def test_a_timeout_is_transient(fake: FakeTwilio) -> None:
    fake.hang_next()
    started = time.monotonic()
    with pytest.raises(SendFailed) as failed:
        twilio_sms(fake, timeout=0.3).send(delivery())
    assert time.monotonic() - started < 3
    assert not failed.value.permanent and failed.value.code == "timeout"


def test_a_refused_connection_is_transient() -> None:
    sms = TwilioSms(account_sid="AC" + "0" * 32, auth_token="t", sender=SENDER, api_base=closed_port_url())
    with pytest.raises(SendFailed) as failed:
        sms.send(delivery())
    assert not failed.value.permanent and failed.value.code == "network"


def test_a_number_that_is_not_e164_fails_without_a_request(fake: FakeTwilio) -> None:
    with pytest.raises(SendFailed) as failed:
        twilio_sms(fake).send(delivery(to="13800138000"))
    assert failed.value.invalid_address
    assert fake.requests == []


def test_a_body_over_twilios_limit_fails_without_a_request(fake: FakeTwilio) -> None:
    with pytest.raises(SendFailed) as failed:
        twilio_sms(fake).send(delivery(Outbound((Text("x" * 1601),))))
    assert failed.value.permanent and failed.value.code == "21617"
    assert fake.requests == []


@pytest.mark.parametrize("sender", ["15005550006", "MG123", "whatsapp:+15005550006", ""])
def test_a_sender_that_is_neither_a_number_nor_a_service_is_refused_at_start(sender: str) -> None:
    with pytest.raises(ValueError, match="sender"):
        TwilioSms(account_sid="AC" + "0" * 32, auth_token="t", sender=sender)


# -- generic HTTP gateway ---------------------------------------------------------------------------


def test_the_gateway_receives_the_documented_json_with_the_bearer_token(fake: FakeTwilio) -> None:
    result = gateway(fake).send(delivery())
    [sent] = fake.gateway_requests
    assert sent.headers["Authorization"] == f"Bearer {fake.gateway_token}"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {
        "to": TO,
        "text": render_sms(QUESTION),
        "reference": "outbox-42",
        "callback_url": CALLBACK,
    }
    assert result.provider_message_ids == (sent.sid,)


def test_a_configured_gateway_sender_goes_as_from(fake: FakeTwilio) -> None:
    gateway(fake, sender="CareLoop").send(delivery())
    assert fake.gateway_requests[-1].json["from"] == "CareLoop"


def test_the_gateway_carries_the_carriers_registrations_by_the_recipients_country(fake: FakeTwilio) -> None:
    """The Chinese signature on +86 numbers, the Vietnamese brandname as the sender on +84 numbers, and a
    registered template's id and parameters when the message has one."""
    registered = HttpGatewaySms(
        url=fake.gateway_url,
        token=fake.gateway_token,
        sender="CareLoop",
        signature="康复医院",
        brandname="BV TAMANH",
    )
    registered.send(delivery())
    chinese = fake.gateway_requests[-1].json
    assert (chinese["signature"], chinese["from"]) == ("康复医院", "CareLoop")
    template = TemplateRef(key="notice", provider_id="SMS_123456", variables={"text": "Hi"})
    registered.send(replace(delivery(to="+84912345678"), template=template, reference="outbox-43"))
    vietnamese = fake.gateway_requests[-1].json
    assert "signature" not in vietnamese and vietnamese["from"] == "BV TAMANH"
    assert (vietnamese["template_id"], vietnamese["template_params"]) == ("SMS_123456", {"text": "Hi"})


def test_a_gateway_invalid_number_marks_the_address_invalid(fake: FakeTwilio) -> None:
    fake.fail_for(TO, code="invalid_number")
    with pytest.raises(SendFailed) as failed:
        gateway(fake).send(delivery())
    assert failed.value.invalid_address and failed.value.code == "invalid_number"


@pytest.mark.parametrize(
    ("status", "code"), [(400, "unsubscribed"), (400, "bad_text"), (401, None), (404, None)]
)
def test_other_gateway_client_errors_are_permanent(fake: FakeTwilio, status: int, code: str | None) -> None:
    fake.fail_next(status=status, code=code)
    with pytest.raises(SendFailed) as failed:
        gateway(fake).send(delivery())
    assert failed.value.permanent and not failed.value.invalid_address
    assert failed.value.code == (code or str(status))


def test_a_gateway_rate_limit_is_transient_and_passes_retry_after(fake: FakeTwilio) -> None:
    fake.fail_next(status=429, retry_after="7")
    with pytest.raises(SendFailed) as failed:
        gateway(fake).send(delivery())
    assert not failed.value.permanent and failed.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_gateway_server_errors_are_transient(fake: FakeTwilio, status: int) -> None:
    fake.fail_next(status=status)
    with pytest.raises(SendFailed) as failed:
        gateway(fake).send(delivery())
    assert not failed.value.permanent


def test_a_gateway_timeout_is_transient(fake: FakeTwilio) -> None:
    fake.hang_next()
    with pytest.raises(SendFailed) as failed:
        gateway(fake, timeout=0.3).send(delivery())
    assert not failed.value.permanent and failed.value.code == "timeout"


def test_a_refused_gateway_connection_is_transient() -> None:
    sms = HttpGatewaySms(url=closed_port_url() + "/send", token="t")
    with pytest.raises(SendFailed) as failed:
        sms.send(delivery())
    assert not failed.value.permanent and failed.value.code == "network"


def test_a_gateway_wrong_token_is_permanent(fake: FakeTwilio) -> None:
    with pytest.raises(SendFailed) as failed:
        HttpGatewaySms(url=fake.gateway_url, token="wrong").send(delivery())
    assert failed.value.permanent


def test_a_gateway_that_accepts_without_an_id_is_not_retried(fake: FakeTwilio) -> None:
    fake.fail_next(status=200)  # 200 with an empty JSON object
    with pytest.raises(SendFailed) as failed:
        gateway(fake).send(delivery())
    assert failed.value.permanent and failed.value.code == "no_id"


# -- gateway callbacks ---------------------------------------------------------------------------------

GW_TOKEN = "gateway-secret"


def signed(payload: object) -> tuple[bytes, str]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return body, gateway_signature(body, GW_TOKEN)


def test_a_signed_gateway_status_callback_parses() -> None:
    body, signature = signed(
        {"type": "status", "id": "gw-1", "status": "delivered", "at": "2025-03-04T13:06:07+08:00"}
    )
    update = parse_gateway_callback(body, signature, GW_TOKEN)
    assert isinstance(update, StatusUpdate)
    assert (update.provider_message_id, update.status, update.invalid_address) == (
        "gw-1",
        DeliveryStatus.DELIVERED,
        False,
    )
    assert update.at is not None and update.at.utcoffset() is not None and update.at.hour == 5


def test_a_gateway_failure_for_an_invalid_number_says_so() -> None:
    body, signature = signed(
        {"type": "status", "id": "gw-1", "status": "failed", "error_code": "invalid_number"}
    )
    update = parse_gateway_callback(body, "sha256=" + signature, GW_TOKEN)
    assert isinstance(update, StatusUpdate)
    assert (
        update.status is DeliveryStatus.FAILED
        and update.invalid_address
        and update.error_code == "invalid_number"
    )


def test_a_signed_gateway_inbound_message_parses() -> None:
    body, signature = signed({"type": "inbound", "id": "gw-in-9", "from": "+84912345678", "text": "Dừng"})
    inbound = parse_gateway_callback(body, signature, GW_TOKEN)
    assert not isinstance(inbound, StatusUpdate)
    assert (inbound.sender, inbound.provider_message_id, inbound.text) == ("+84912345678", "gw-in-9", "Dừng")
    assert inbound.channel == "sms"


@pytest.mark.parametrize("header", ["", "00" * 32, "not-hex"])
def test_a_gateway_callback_with_a_wrong_or_missing_signature_is_forged(header: str) -> None:
    body, _ = signed({"type": "status", "id": "gw-1", "status": "delivered"})
    with pytest.raises(ForgedRequest):
        parse_gateway_callback(body, header, GW_TOKEN)


def test_a_gateway_callback_signed_with_another_token_is_forged() -> None:
    body, signature = signed({"type": "status", "id": "gw-1", "status": "delivered"})
    with pytest.raises(ForgedRequest):
        parse_gateway_callback(body, signature, "another-token")


def test_a_tampered_gateway_body_is_forged() -> None:
    body, signature = signed({"type": "status", "id": "gw-1", "status": "delivered"})
    with pytest.raises(ForgedRequest):
        parse_gateway_callback(body.replace(b"delivered", b"failed"), signature, GW_TOKEN)


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"type": "status", "status": "delivered"},
        {"type": "status", "id": "gw-1", "status": "exploded"},
        {"type": "status", "id": "gw-1", "status": "sent", "at": "yesterday"},
        {"type": "status", "id": "gw-1", "status": "sent", "at": "2025-03-04T13:06:07"},  # no offset
        {"type": "inbound", "id": "gw-1", "from": "0912345678", "text": "hi"},
        {"type": "inbound", "id": "gw-1", "from": "+84912345678", "text": 5},
        {"type": "mystery", "id": "gw-1"},
    ],
)
def test_a_signed_but_malformed_gateway_callback_is_malformed(payload: object) -> None:
    body, signature = signed(payload)
    with pytest.raises(MalformedPayload):
        parse_gateway_callback(body, signature, GW_TOKEN)


def test_a_signed_gateway_callback_that_is_not_json_is_malformed() -> None:
    body = b"to=+84&text=hi"
    with pytest.raises(MalformedPayload):
        parse_gateway_callback(body, gateway_signature(body, GW_TOKEN), GW_TOKEN)


# -- the fake itself (others reuse it: it must refuse what Twilio refuses) -------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SENDER, "Body": "x"}, 21604),
        ({"To": "13800138000", "From": SENDER, "Body": "x"}, 21211),
        ({"To": TO, "Body": "x"}, 21603),
        ({"To": TO, "From": SENDER}, 21602),
        ({"To": TO, "From": "+1", "Body": "x"}, 21606),
        ({"To": TO, "MessagingServiceSid": "MG1", "Body": "x"}, 21701),
        ({"To": TO, "From": SENDER, "ContentSid": "HX1"}, 21655),
        ({"To": TO, "From": SENDER, "ContentSid": "HX" + "a" * 32, "ContentVariables": "{"}, 21656),
        ({"To": f"whatsapp:{TO}", "From": SENDER, "Body": "x"}, 21910),
    ],
)
def test_the_fake_refuses_malformed_requests_like_twilio(
    fake: FakeTwilio, form: dict[str, str], code: int
) -> None:
    response = httpx.post(fake.messages_url, data=form, auth=(fake.account_sid, fake.auth_token))
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert fake.messages == []


def test_the_fake_answers_201_with_a_twilio_message_resource(fake: FakeTwilio) -> None:
    form = {"To": TO, "From": SENDER, "Body": "好" * 71}
    response = httpx.post(fake.messages_url, data=form, auth=(fake.account_sid, fake.auth_token))
    assert response.status_code == 201
    message = response.json()
    assert message["sid"].startswith("SM") and len(message["sid"]) == 34
    assert (message["status"], message["num_segments"], message["direction"]) == (
        "queued",
        "2",
        "outbound-api",
    )
    bad_auth = httpx.post(fake.messages_url, data=form, auth=(fake.account_sid, "nope"))
    assert (bad_auth.status_code, bad_auth.json()["code"]) == (401, 20003)


def test_the_http_client_reads_proxy_and_ca_settings_once_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.sms_twilio import http_client_for

    for name in (
        "NO_PROXY",
        "no_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.hospital.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/hospital-ca.pem")
    http = http_client_for("https://api.twilio.com", 10)
    assert http.proxy.get("https") == "http://proxy.hospital.example:3128"
    assert http.session is not None and http.session.trust_env is False
    assert http.session.verify == "/etc/ssl/hospital-ca.pem"

    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    http = http_client_for("https://api.twilio.com", 10)
    assert http.proxy == {}
    assert http.session is not None and http.session.verify is True
