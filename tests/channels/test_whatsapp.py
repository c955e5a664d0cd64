"""WhatsApp through Twilio: free-form inside the 24-hour window, templates outside it and for buttons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bots.domain import Channel
from bots.messages import Choice, Choices, MediaRef, Outbound, Text
from channels.base import Delivery, SendFailed, TemplateRef
from channels.sms_render import render_sms
from channels.whatsapp import TwilioWhatsApp
from tests.channels.fake_twilio import FakeTwilio

SENDER = "+15005550006"
TO = "+84912345678"
CONTENT_SID = "HX" + "a" * 32
CALLBACK = "https://care.example.org/channels/twilio/status"
PLAIN = Outbound((Text("Bệnh viện nhắc bạn: tái khám thứ Ba."),))
QUESTION = Outbound(
    (Text("Bạn thấy thế nào?"), Choices((Choice("better", "Tốt hơn"), Choice("worse", "Tệ hơn"))))
)
TEMPLATE = TemplateRef("followup_invite", CONTENT_SID, {"1": "Nguyễn Văn An", "2": "thứ Ba"})


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


def whatsapp(fake: FakeTwilio, sender: str = SENDER, timeout: float = 2.0) -> TwilioWhatsApp:
    return TwilioWhatsApp(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        sender=sender,
        api_base=fake.base_url,
        timeout=timeout,
    )


def delivery(
    outbound: Outbound = PLAIN,
    *,
    window_open: bool = True,
    template: TemplateRef | None = None,
    to: str = TO,
    callback: str | None = CALLBACK,
) -> Delivery:
    return Delivery(
        reference="outbox-7",
        to=to,
        outbound=outbound,
        lang="vi",
        window_open=window_open,
        template=template,
        status_callback=callback,
    )


def test_the_channel_is_whatsapp(fake: FakeTwilio) -> None:
    assert whatsapp(fake).channel is Channel.WHATSAPP


def test_inside_the_window_a_free_form_body_goes_with_whatsapp_addresses(fake: FakeTwilio) -> None:
    result = whatsapp(fake).send(delivery())
    [sent] = fake.messages
    assert sent.params == {
        "To": f"whatsapp:{TO}",
        "From": f"whatsapp:{SENDER}",
        "Body": render_sms(PLAIN),
        "StatusCallback": CALLBACK,
    }
    assert result.provider_message_ids == (sent.sid,)


def test_a_prefixed_sender_and_recipient_are_not_prefixed_twice(fake: FakeTwilio) -> None:
    whatsapp(fake, sender=f"whatsapp:{SENDER}").send(delivery(to=f"whatsapp:{TO}"))
    assert fake.messages[-1].params["To"] == f"whatsapp:{TO}"
    assert fake.messages[-1].params["From"] == f"whatsapp:{SENDER}"


def test_inside_the_window_choices_without_a_template_go_as_numbered_lines(fake: FakeTwilio) -> None:
    whatsapp(fake).send(delivery(QUESTION))
    assert fake.messages[-1].params["Body"] == "Bạn thấy thế nào?\n1. Tốt hơn\n2. Tệ hơn"
    assert "ContentSid" not in fake.messages[-1].params


def test_inside_the_window_choices_with_a_template_go_as_the_template_for_real_buttons(
    fake: FakeTwilio,
) -> None:
    whatsapp(fake).send(delivery(QUESTION, template=TEMPLATE))
    sent = fake.messages[-1].params
    assert sent["ContentSid"] == CONTENT_SID
    assert json.loads(sent["ContentVariables"]) == {"1": "Nguyễn Văn An", "2": "thứ Ba"}
    assert "Body" not in sent


def test_inside_the_window_a_template_is_not_used_for_a_plain_message(fake: FakeTwilio) -> None:
    whatsapp(fake).send(delivery(PLAIN, template=TEMPLATE))
    assert "ContentSid" not in fake.messages[-1].params
    assert fake.messages[-1].params["Body"] == render_sms(PLAIN)


def test_outside_the_window_the_approved_template_goes(fake: FakeTwilio) -> None:
    whatsapp(fake).send(delivery(PLAIN, window_open=False, template=TEMPLATE))
    assert fake.messages[-1].params == {
        "To": f"whatsapp:{TO}",
        "From": f"whatsapp:{SENDER}",
        "ContentSid": CONTENT_SID,
        "ContentVariables": json.dumps({"1": "Nguyễn Văn An", "2": "thứ Ba"}, ensure_ascii=False),
        "StatusCallback": CALLBACK,
    }


def test_a_template_without_variables_sends_no_content_variables(fake: FakeTwilio) -> None:
    whatsapp(fake).send(delivery(window_open=False, template=TemplateRef("hello", CONTENT_SID)))
    assert "ContentVariables" not in fake.messages[-1].params


def test_outside_the_window_without_a_template_nothing_is_sent(fake: FakeTwilio) -> None:
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake).send(delivery(window_open=False))
    assert failed.value.window_closed and failed.value.permanent and not failed.value.invalid_address
    assert fake.requests == []


def test_twilios_window_closed_error_is_reported_as_window_closed(fake: FakeTwilio) -> None:
    fake.fail_next(code=63016)
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake).send(delivery())
    assert failed.value.window_closed and failed.value.permanent and failed.value.code == "63016"


@pytest.mark.parametrize("code", [63003, 21211])
def test_a_recipient_that_is_not_on_whatsapp_is_an_invalid_address(fake: FakeTwilio, code: int) -> None:
    fake.fail_for(TO, code=code)
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake).send(delivery())
    assert failed.value.invalid_address


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(fake: FakeTwilio, status: int) -> None:
    fake.fail_next(status=status, code=20429 if status == 429 else None)
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake).send(delivery())
    assert not failed.value.permanent and not failed.value.window_closed


def test_a_timeout_is_transient(fake: FakeTwilio) -> None:
    fake.hang_next()
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake, timeout=0.3).send(delivery())
    assert not failed.value.permanent


def test_the_first_media_is_attached_and_further_media_go_as_links(fake: FakeTwilio) -> None:
    outbound = Outbound(
        (
            Text("Hướng dẫn sau mổ"),
            MediaRef("https://cdn.example.org/a.pdf", "application/pdf"),
            MediaRef("https://cdn.example.org/b.png", "image/png"),
        )
    )
    whatsapp(fake).send(delivery(outbound))
    sent = fake.messages[-1]
    assert sent.lists["MediaUrl"] == ["https://cdn.example.org/a.pdf"]
    assert sent.params["Body"] == "Hướng dẫn sau mổ\nhttps://cdn.example.org/b.png"


def test_a_media_only_message_has_no_body(fake: FakeTwilio) -> None:
    whatsapp(fake).send(delivery(Outbound((MediaRef("https://cdn.example.org/a.png", "image/png"),))))
    assert "Body" not in fake.messages[-1].params
    assert fake.messages[-1].lists["MediaUrl"] == ["https://cdn.example.org/a.png"]


def test_a_number_that_is_not_e164_fails_without_a_request(fake: FakeTwilio) -> None:
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake).send(delivery(to="0912345678"))
    assert failed.value.invalid_address
    assert fake.requests == []


def test_a_messaging_service_sender_goes_as_messaging_service_sid(fake: FakeTwilio) -> None:
    service = "MG" + "1" * 32
    whatsapp(fake, sender=service).send(delivery())
    sent = fake.messages[-1].params
    assert sent["MessagingServiceSid"] == service and "From" not in sent


def test_an_invalid_sender_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="sender"):
        TwilioWhatsApp(account_sid="AC" + "0" * 32, auth_token="t", sender="0912345678")


def test_after_a_timeout_the_accepted_free_form_message_is_found_not_resent(fake: FakeTwilio) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    fake.hang_next(seconds=2, accept=True)
    with pytest.raises(SendFailed) as failed:
        whatsapp(fake, timeout=0.3).send(delivery())
    assert failed.value.code == "timeout"
    [accepted] = fake.messages
    found = whatsapp(fake).find_sent(delivery(), since)
    assert found is not None and found.provider_message_ids == (accepted.sid,)
    assert whatsapp(fake).find_sent(delivery(to="+84912345679"), since) is None  # another number
    assert whatsapp(fake).find_sent(delivery(QUESTION), since) is None  # another body
    assert whatsapp(fake).find_sent(delivery(), datetime.now(UTC) + timedelta(hours=1)) is None  # older
    assert whatsapp(fake).find_sent(delivery(window_open=False, template=TEMPLATE), since) is None
    assert len(fake.messages) == 1
