"""The SIP gateway's wire formats without a network: SIP parsing, digest auth against RFC 2617's own
example, SDP answers, G.711 A-law against the reference tables, RFC 4733 keys, RTCP reports."""

from __future__ import annotations

import struct

import pytest

from voice_ai.rtp import (
    ALAW_TO_ULAW,
    ULAW_TO_ALAW,
    MalformedRtp,
    RtpPacket,
    alaw_decode,
    event_payload,
    parse_event,
    parse_rtp,
    received_by_peer,
)
from voice_ai.sip_message import Codec, MalformedSip, digest_authorization, parse, sdp_answer, sdp_offer

RESPONSE = (
    b"SIP/2.0 407 Proxy Authentication Required\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport=5070\r\n"
    b"f: <sip:careloop@example.org>;tag=1\r\n"
    b"To: <sip:+8613900000001@example.org>;tag=2\r\n"
    b"i: abc@careloop\r\n"
    b"CSeq: 1 INVITE\r\n"
    b'Proxy-Authenticate: Digest realm="example.org", nonce="n1", qop="auth"\r\n'
    b"Content-Length: 0\r\n\r\n"
)


def test_a_response_parses_with_compact_headers() -> None:
    message = parse(RESPONSE)
    assert message.status == 407 and message.cseq() == (1, "INVITE")
    assert (
        message.get("call-id") == "abc@careloop"
        and message.get(
            "From",
        )
        is not None
    )
    assert parse(message.encode()).headers == message.headers  # what we send, we can read back


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", "neither a SIP request"),
        (b"SIP/2.0 200 OK\r\nVia: x\r\n", "no blank line"),
        (RESPONSE.replace(b"CSeq: 1 INVITE", b"CSeq: one"), "CSeq"),
        (RESPONSE.replace(b"i: abc@careloop\r\n", b""), "Call-ID is missing"),
        (RESPONSE.replace(b"Content-Length: 0", b"Content-Length: 99"), "Content-Length"),
        (b"SIP/2.0 999 Huh\r\nVia: x\r\n\r\n", "out of range"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedSip, match=reason):
        parse(data)


def test_digest_matches_rfc_2617s_worked_example() -> None:
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = digest_authorization(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle Of Life",
        cnonce="0a4f113b",
    )  # fmt: skip
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "nc=00000001" in value and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value


def test_a_challenge_we_cannot_answer_is_refused() -> None:
    with pytest.raises(MalformedSip, match="not MD5"):
        digest_authorization(
            'Digest realm="r", nonce="n", algorithm=SHA-256', method="INVITE", uri="sip:x", username="u",
            password="p",
        )  # fmt: skip


def test_the_answer_picks_the_far_ends_codec_and_event_type() -> None:
    offer = sdp_offer("10.0.0.1", 10000, (Codec.PCMA, Codec.PCMU), 1).decode()
    assert "m=audio 10000 RTP/AVP 8 0 101" in offer and "a=rtpmap:101 telephone-event/8000" in offer
    answer = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n"
    )
    media = sdp_answer(answer, (Codec.PCMA, Codec.PCMU))
    assert (media.address, media.port, media.codec, media.event_pt) == ("192.0.2.9", 40000, Codec.PCMU, 96)
    with pytest.raises(MalformedSip, match=r"none of the G\.711"):
        sdp_answer(answer.replace(b"RTP/AVP 0 96", b"RTP/AVP 18 96"), (Codec.PCMA, Codec.PCMU))


def test_a_law_matches_the_g711_reference_values() -> None:
    # From the G.711 tables (Sun g711.c alaw2linear): 0xD5 is the smallest positive step, 0x2A the
    # most negative value, 0xAA the most positive.
    assert (alaw_decode(0xD5), alaw_decode(0x55), alaw_decode(0xAA), alaw_decode(0x2A)) == (
        8,
        -8,
        32256,
        -32256,
    )
    # mu-law silence is A-law silence; a round trip through A-law keeps every mu-law level within one step.
    assert ULAW_TO_ALAW[0xFF] == 0xD5
    assert all(abs(ALAW_TO_ULAW[ULAW_TO_ALAW[u]] - u) <= 1 for u in range(256) if u not in (0x7F, 0xFF))


def test_a_key_is_its_end_packet() -> None:
    packet = RtpPacket(101, 7, 1234, 42, event_payload("#", end=True, duration=800), marker=True)
    read = parse_rtp(packet.encode())
    event = parse_event(read.payload)
    assert event is not None and (event.digit, event.end, event.duration) == ("#", True, 800)
    assert parse_event(struct.pack("!BBH", 16, 0x80, 100)) is None  # a flash, not a key
    with pytest.raises(MalformedRtp):
        parse_event(b"\x01")


def test_rtcp_reports_what_the_peer_received_from_us() -> None:
    ours, theirs = 0xCAFE, 0xBEEF
    block = struct.pack("!IIIIII", ours, 0, 1500, 0, 0, 0)
    receiver_report = struct.pack("!BBHI", 0x81, 201, 7, theirs) + block
    sender_report = (
        struct.pack("!BBHI", 0x81, 200, 12, theirs)
        + b"\0" * 20
        + block.replace(struct.pack("!I", 1500), struct.pack("!I", 1600))
    )
    assert received_by_peer(receiver_report, ours) == 1500
    assert received_by_peer(sender_report + receiver_report, 0x1234) is None
    assert received_by_peer(sender_report, ours) == 1600
