"""The SIP gateway against a real proxy (kamailio) and phone (baresip) on 127.0.0.1, for everything
short of a survey: busy and declined calls, no answer, refused credentials, and a trunk whose replies
cannot be read. The answered call, with our server on the other side, is in
tests/backend/voice/test_sip_calls.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.sip_peers import Phone, needs_sip_peers, sip_phone
from voice_ai.call_events import CallState
from voice_ai.gateway import CallRequest, CallStatus, GatewayError
from voice_ai.gateway_sip import SipGateway, SipTrunk
from voice_ai.sip_message import SipMessage, parse

pytestmark = [needs_sip_peers]
__all__ = ["sip_phone"]  # the fixture, used by name


def request(to: str, ring_seconds: int = 30) -> CallRequest:
    return CallRequest(to=to, call_ref="1", answer_url="", status_url="", ring_seconds=ring_seconds)


def never_streamed(request: CallRequest, by: object) -> tuple[str, dict[str, str]]:
    raise AssertionError("an unanswered call must not open a stream")


@pytest.fixture
def statuses() -> list[CallStatus]:
    return []


@pytest.fixture
def gateway_for(statuses: list[CallStatus]) -> Iterator[object]:
    made: list[SipGateway] = []

    def make(trunk: SipTrunk) -> SipGateway:
        gateway = SipGateway(trunk, never_streamed, statuses.append)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


def final(statuses: list[CallStatus]) -> CallStatus:
    ordered = sorted(statuses, key=lambda s: s.sequence or 0)
    return ordered[-1]


@pytest.mark.parametrize(("number", "code"), [("busy", 486), ("decline", 603)])
def test_a_busy_or_declining_callee_ends_the_call_as_busy(
    sip_phone: Phone, gateway_for: object, statuses: list[CallStatus], number: str, code: int
) -> None:
    gateway = gateway_for(sip_phone.trunk())  # type: ignore[operator]
    placed = gateway.place_call(request(number))
    line = gateway.wait(placed.provider_id, 10)
    # The call is over as Twilio reports a rejected call (busy), after digest auth got it through.
    assert line.final_code == code and line.rtp_out == 0
    assert final(statuses).state is CallState.BUSY and final(statuses).duration_seconds == 0


def test_nobody_answering_is_cancelled_after_the_ring_time(
    sip_phone: Phone, gateway_for: object, statuses: list[CallStatus]
) -> None:
    gateway = gateway_for(sip_phone.trunk())  # type: ignore[operator]
    placed = gateway.place_call(request("ringing", ring_seconds=2))
    line = gateway.wait(placed.provider_id, 20)
    # The phone rang (180), we sent CANCEL after 2 s, the phone answered the INVITE 487.
    assert [s.state for s in sorted(statuses, key=lambda s: s.sequence or 0)] == [
        CallState.RINGING,
        CallState.NO_ANSWER,
    ]
    assert line.ended_by == "cancel" and line.final_code == 487


def test_a_wrong_password_is_a_clear_permanent_error(sip_phone: Phone, gateway_for: object) -> None:
    gateway = gateway_for(sip_phone.trunk(password="not-the-password"))  # type: ignore[operator]
    with pytest.raises(GatewayError) as refused:
        gateway.place_call(request("patient"))
    # The proxy challenged again after our answer: no retry can help, the dialer must not redial.
    assert refused.value.permanent and refused.value.code == "sip-407"
    assert "refused our credentials" in str(refused.value)


def test_a_forbidden_caller_is_a_clear_permanent_error(sip_phone: Phone, gateway_for: object) -> None:
    gateway = gateway_for(sip_phone.trunk(caller_id="barred"))  # type: ignore[operator]
    with pytest.raises(GatewayError) as refused:
        gateway.place_call(request("patient"))
    assert refused.value.permanent and refused.value.code == "sip-403"
    assert "caller id" in str(refused.value)


def test_an_unreadable_trunk_reply_is_named_and_the_call_refused(gateway_for: object) -> None:
    """A UDP peer answering every INVITE with a status line and no headers: each reply is skipped,
    and place_call says the trunk's replies could not be read, naming what was wrong."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(0.2)
    stop = threading.Event()
    seen: list[bytes] = []

    def answer() -> None:
        while not stop.is_set():
            try:
                data, addr = peer.recvfrom(4096)
            except TimeoutError:
                continue
            seen.append(data)
            peer.sendto(b"SIP/2.0 200 OK\r\nContent-Length: zero\r\n\r\n", addr)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    trunk = SipTrunk(
        host="127.0.0.1", port=peer.getsockname()[1], answer_timeout=1.5, rtp_ports=(30400, 30410)
    )
    gateway = gateway_for(trunk)  # type: ignore[operator]
    try:
        with pytest.raises(GatewayError) as refused:
            gateway.place_call(request("patient"))
    finally:
        stop.set()
        thread.join()
        peer.close()
    assert refused.value.code == "malformed" and not refused.value.permanent
    assert "Via is missing" in str(refused.value)
    assert seen and all(d.startswith(b"INVITE sip:patient@127.0.0.1") for d in seen)  # retransmitted


def test_an_answer_with_unusable_media_is_acked_then_hung_up(
    gateway_for: object, statuses: list[CallStatus]
) -> None:
    """A trunk (a UDP peer here) answers 200 OK offering only G.729: we ACK, say BYE at once, and the
    call is failed, the reason noted (the SDP names no G.711 codec), never bridged."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(0.2)
    stop = threading.Event()
    methods: list[str] = []

    def trunk() -> None:
        while not stop.is_set():
            try:
                data, addr = peer.recvfrom(4096)
            except TimeoutError:
                continue
            message = parse(data)
            methods.append(message.method)
            if message.method in ("INVITE", "BYE"):
                ok = SipMessage(status=200, reason="OK", headers=[
                    *[(k, v) for k, v in message.headers if k in ("Via", "From", "Call-ID", "CSeq")],
                    ("To", (message.get("To") or "") + ("" if message.method == "BYE" else ";tag=far")),
                    ("Contact", f"<sip:far@127.0.0.1:{peer.getsockname()[1]}>"),
                ])  # fmt: skip
                if message.method == "INVITE":
                    ok.body = (
                        b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
                    )
                peer.sendto(ok.encode(), addr)

    thread = threading.Thread(target=trunk, daemon=True)
    thread.start()
    trunk_at = SipTrunk(
        host="127.0.0.1", port=peer.getsockname()[1], answer_timeout=2, rtp_ports=(30420, 30430)
    )
    gateway = gateway_for(trunk_at)  # type: ignore[operator]
    try:
        placed = gateway.place_call(request("patient"))
        line = gateway.wait(placed.provider_id, 10)
    finally:
        stop.set()
        thread.join()
        peer.close()
    assert methods == ["INVITE", "ACK", "BYE"] and line.bye_confirmed and line.rtp_out == 0
    assert line.malformed == ["the answer's SDP takes none of the G.711 codecs offered"]
    assert final(statuses).state is CallState.FAILED
