"""Reading bounce reports (RFC 3464's own examples and a Postfix-style bounce) and routing our addresses."""

from __future__ import annotations

import pytest

from channels.base import MalformedPayload
from channels.email_inbound import envelope_recipient, parse_dsn, parse_mail, route
from tests.channels.dsn import bounce, sample


def test_rfc3464_simple_dsn_a_failure_after_days_of_4xx_is_not_hard() -> None:
    dsn = parse_dsn(parse_mail(sample("rfc3464_10_1_simple.eml")))
    [only] = dsn.recipients
    assert (only.action, only.status, only.final_recipient) == (
        "failed",
        "4.0.0",
        "louisl@larry.slip.umd.edu",
    )
    assert only.diagnostic == "smtp; 426 connection timed out"
    assert only.failed and not only.hard
    assert dsn.original_message_id is None  # the example's original is a placeholder without headers


def test_rfc3464_multi_recipient_dsn_reads_every_block_and_status_comments() -> None:
    dsn = parse_dsn(parse_mail(sample("rfc3464_10_2_multi_recipient.eml")))
    assert [(r.final_recipient, r.action, r.status) for r in dsn.recipients] == [
        ("arathib@vnet.ibm.com", "failed", "5.0.0"),
        ("johnh@hpnjld.njd.hp.com", "delayed", "4.0.0"),
        ("wsnell@sdcc13.ucsd.edu", "failed", "5.0.0"),
    ]
    # 5.0.0 names no cause: the message failed, but nothing says the address is gone
    assert not any(r.hard for r in dsn.recipients)
    assert "not a registered gateway user" in (dsn.recipients[0].diagnostic or "")  # folded line joined


def test_rfc3464_delayed_dsn_is_not_a_failure() -> None:
    [only] = parse_dsn(parse_mail(sample("rfc3464_10_4_delayed.eml"))).recipients
    assert only.action == "delayed" and not only.failed and not only.hard


@pytest.mark.parametrize(
    ("status", "hard"),
    [("5.1.1", True), ("5.1.10", True), ("5.2.1", True), ("5.2.2", False), ("5.7.1", False)],
)
def test_only_address_failures_are_hard(status: str, hard: bool) -> None:
    raw = bounce(
        to="bounces+9-aaaaaaaaaaaaaaaaaaaa@care.example.vn",
        recipient="lan@example.vn",
        status=status,
        message_id="<careloop.9-aaaaaaaaaaaaaaaaaaaa@care.example.vn>",
    )
    dsn = parse_dsn(parse_mail(raw))
    assert dsn.recipients[0].hard is hard
    assert dsn.original_message_id == "<careloop.9-aaaaaaaaaaaaaaaaaaaa@care.example.vn>"


def test_our_addresses_are_routed_and_others_refused() -> None:
    assert route("bounces+9-ABCdef@care.example.vn").token == "9-abcdef"  # some MTAs change case
    assert route("<unsubscribe+7-care-00@care.example.vn>").kind == "unsubscribe"
    for stranger in ("postmaster@care.example.vn", "bounces@care.example.vn", "bounces+a b@x", ""):
        with pytest.raises(MalformedPayload):
            route(stranger)


def test_the_envelope_recipient_falls_back_to_the_headers() -> None:
    raw = b"Delivered-To: unsubscribe+7-care-00@care.example.vn\r\nTo: Info <info@care.example.vn>\r\n\r\nx"
    assert envelope_recipient(parse_mail(raw)) == "unsubscribe+7-care-00@care.example.vn"
    assert (
        envelope_recipient(parse_mail(b"To: Info <info@care.example.vn>\r\n\r\n")) == "info@care.example.vn"
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not a mail at all",
        b"Content-Type: text/plain\r\n\r\nI am on holiday until Monday.",
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n\r\n--x--",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n\r\n"
        b"Final-Recipient: rfc822; a@b.c\r\nAction: exploded\r\nStatus: 5.1.1\r\n\r\n--x--",
    ],
)
def test_anything_but_a_delivery_status_report_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_dsn(parse_mail(raw))
