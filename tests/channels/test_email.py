"""The email adapter against a real local SMTP server: the message it builds, and how it classifies
what the server answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from bots.messages import Choice, Choices, Link, Outbound, Text
from channels.base import Delivery, MailContext, SendFailed
from channels.email import SmtpConfig, SmtpEmail, build_message
from tests.channels.fake_smtp import FakeSmtp

CONTEXT = MailContext(
    subject="Bệnh viện An Bình: thông tin về việc chăm sóc của bạn",
    item_token="42-0123456789abcdef0123",
    unsubscribe_token="7-care-0123456789abcdef0123",
    unsubscribe_url="https://care.example.vn/m/u/7-care-0123456789abcdef0123",
    footer="Bạn nhận được email này vì bạn là bệnh nhân.",
    unsubscribe_label="Ngừng nhận các email này",
)
DELIVERY = Delivery(
    reference="42",
    to="lan.nguyen@example.vn",
    outbound=Outbound(
        (
            Text("Chào chị Lan,\nlịch tái khám <ngày 12/12> & đừng quên."),
            Choices((Choice("yes", "Có"), Choice("no", "Không"))),
            Link("https://care.example.vn/q/abc", "Trả lời"),
            Link("javascript:alert(1)", "bad"),
        )
    ),
    lang="vi",
    mail=CONTEXT,
)


def config(fake: FakeSmtp, **changes: object) -> SmtpConfig:
    base = SmtpConfig(
        host=fake.host,
        port=fake.port,
        security=fake.mode,
        from_address="follow-up@care.example.vn",
        from_name="Bệnh viện An Bình",
        domain="care.example.vn",
        username=fake.username,
        password=fake.password,
        reply_to="service@care.example.vn",
        timeout=5,
        ca_file=fake.cert_file,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def relay() -> Iterator[FakeSmtp]:
    with FakeSmtp(username="careloop", password="s3cret pass", tls="starttls", require_tls=True) as fake:
        yield fake


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_message_has_every_header_a_relay_and_a_dkim_signer_need() -> None:
    now = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    cfg = SmtpConfig("h", 25, "none", "follow-up@care.example.vn", "Bệnh viện An Bình", "care.example.vn")
    message = build_message(DELIVERY, cfg, now)
    raw = message.as_bytes(policy=policy.SMTP)
    assert b"\r\n" in raw and all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322 limits
    reparsed = message_from_bytes(raw, policy=policy.default)
    assert reparsed["Message-ID"] == "<careloop.42-0123456789abcdef0123@care.example.vn>"
    assert reparsed["Date"] == "Mon, 07 Dec 2026 09:30:00 +0000"
    assert reparsed["From"].addresses[0].display_name == "Bệnh viện An Bình"
    assert reparsed["From"].addresses[0].addr_spec == "follow-up@care.example.vn"
    assert reparsed["To"] == "lan.nguyen@example.vn"
    assert reparsed["Subject"] == CONTEXT.subject
    assert " ".join(reparsed["List-Unsubscribe"].split()) == (  # folded: more than 78 characters
        "<https://care.example.vn/m/u/7-care-0123456789abcdef0123>, "
        "<mailto:unsubscribe+7-care-0123456789abcdef0123@care.example.vn?subject=unsubscribe>"
    )
    assert reparsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert reparsed["Auto-Submitted"] == "auto-generated"
    assert reparsed["Content-Language"] == "vi"
    assert reparsed.get_content_type() == "multipart/alternative"
    assert "Reply-To" not in reparsed  # none configured here
    assert "Return-Path" not in reparsed  # the receiving MTA writes it from our envelope sender


def test_the_html_part_escapes_the_text_and_keeps_only_web_links() -> None:
    cfg = SmtpConfig("h", 25, "none", "a@care.example.vn", "H", "care.example.vn")
    message = build_message(DELIVERY, cfg)
    html = _html(message)
    assert "&lt;ngày 12/12&gt; &amp; đừng quên" in html
    assert "Chào chị Lan,<br>lịch" in html
    assert "<li>Có</li><li>Không</li>" in html
    assert '<a href="https://care.example.vn/q/abc">Trả lời</a>' in html
    assert "javascript:" not in html
    assert '<a href="https://care.example.vn/m/u/7-care-0123456789abcdef0123">Ngừng nhận' in html
    text = _text(message)
    assert "1. Có\n2. Không" in text
    assert "Ngừng nhận các email này: https://care.example.vn/m/u/7-care-0123456789abcdef0123" in text


def test_a_staff_members_own_words_are_not_marked_automatic() -> None:
    cfg = SmtpConfig("h", 25, "none", "a@care.example.vn", "H", "care.example.vn")
    by_hand = replace(DELIVERY, mail=replace(CONTEXT, auto_submitted=False))
    assert "Auto-Submitted" not in build_message(by_hand, cfg)


def test_sent_over_starttls_with_auth_plain_and_a_verp_envelope(relay: FakeSmtp) -> None:
    result = SmtpEmail(config(relay)).send(DELIVERY)
    assert result.provider_message_ids == ("<careloop.42-0123456789abcdef0123@care.example.vn>",)
    [got] = relay.received
    assert got.tls and got.user == "careloop"
    assert got.envelope_from == "bounces+42-0123456789abcdef0123@care.example.vn"
    assert got.recipients == ["lan.nguyen@example.vn"]
    assert got.message["Reply-To"] == "service@care.example.vn"
    assert got.message["Message-ID"] == result.provider_message_ids[0]
    assert "Chào chị Lan" in _text(got.message)


def test_a_resend_carries_the_same_message_id(relay: FakeSmtp) -> None:
    sender = SmtpEmail(config(relay))
    sender.send(DELIVERY)
    sender.send(DELIVERY)
    assert len({r.message["Message-ID"] for r in relay.received}) == 1
    assert len({r.envelope_from for r in relay.received}) == 1


def test_tls_from_the_first_byte() -> None:
    with FakeSmtp(username="u", password="p", tls="ssl") as fake:
        SmtpEmail(config(fake)).send(DELIVERY)
        assert fake.received[0].tls


def test_an_untrusted_certificate_is_not_sent_to(relay: FakeSmtp) -> None:
    with pytest.raises(SendFailed) as failed:
        SmtpEmail(config(relay, ca_file=None)).send(DELIVERY)
    assert not failed.value.permanent and failed.value.code == "connection"
    assert relay.received == []


def test_starttls_missing_is_not_a_reason_to_send_in_clear() -> None:
    with FakeSmtp(tls="none") as fake:
        with pytest.raises(SendFailed) as failed:
            SmtpEmail(config(fake, security="starttls")).send(DELIVERY)
        assert not failed.value.permanent
        assert fake.received == []


def test_wrong_credentials_are_retried_not_blamed_on_the_patient(relay: FakeSmtp) -> None:
    with pytest.raises(SendFailed) as failed:
        SmtpEmail(config(relay, password="wrong")).send(DELIVERY)
    assert not failed.value.permanent and not failed.value.invalid_address
    assert failed.value.code == "auth_535"
    assert relay.received == []


@pytest.mark.parametrize(
    ("stage", "code", "text", "permanent", "invalid", "expected_code"),
    [
        ("RCPT", 550, "5.1.1 no such user", True, True, "smtp_550_5.1.1"),
        ("RCPT", 552, "5.2.2 mailbox full", True, False, "smtp_552_5.2.2"),
        ("RCPT", 450, "4.2.1 mailbox busy", False, False, "smtp_450_4.2.1"),
        ("MAIL", 550, "5.7.1 sender not allowed", True, False, "smtp_550_5.7.1"),
        ("MAIL", 421, "4.7.0 too many connections", False, False, "smtp_421_4.7.0"),
        ("DATA", 554, "5.3.4 too big", True, False, "smtp_554_5.3.4"),
        ("DATA-END", 451, "4.3.0 try again later", False, False, "smtp_451_4.3.0"),
        ("DATA-END", 554, "5.7.1 rejected as spam", True, False, "smtp_554_5.7.1"),
    ],
)
def test_replies_are_classified(
    relay: FakeSmtp, stage: str, code: int, text: str, permanent: bool, invalid: bool, expected_code: str
) -> None:
    relay.fail(stage, code, text)
    with pytest.raises(SendFailed) as failed:
        SmtpEmail(config(relay)).send(DELIVERY)
    assert failed.value.permanent is permanent
    assert failed.value.invalid_address is invalid
    assert failed.value.code == expected_code
    assert relay.received == []  # a refused message is not kept


def test_a_refused_connection_is_transient_and_not_ambiguous() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    cfg = SmtpConfig("127.0.0.1", port, "none", "a@care.example.vn", "H", "care.example.vn", timeout=2)
    with pytest.raises(SendFailed) as failed:
        SmtpEmail(cfg).send(DELIVERY)
    assert not failed.value.permanent and failed.value.code == "connection"


def test_a_connection_lost_after_the_body_is_ambiguous(relay: FakeSmtp) -> None:
    relay.hang_after_data()
    with pytest.raises(SendFailed) as failed:
        SmtpEmail(config(relay)).send(DELIVERY)
    assert not failed.value.permanent and failed.value.code == "timeout"  # the sender's ambiguous code
    assert len(relay.received) == 1  # the server did take it: a resend is the duplicate the docs bound


def test_a_delivery_without_its_mail_context_is_a_bug() -> None:
    cfg = SmtpConfig("h", 25, "none", "a@care.example.vn", "H", "care.example.vn")
    with pytest.raises(ValueError):
        build_message(replace(DELIVERY, mail=None), cfg)
