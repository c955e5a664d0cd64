"""One outbound SIP call for the SIP gateway: the INVITE transaction (digest auth on 401/407, CANCEL
after the ring time), the dialog (ACK, BYE either way, the far end's requests answered), and the
media handed to `RtpBridge` once answered. Status changes go to `on_status` in the backend's thread
pool, numbered so a late one is ignored; a failure before the trunk has said anything useful is a
`GatewayError` from `begin()`, as a refused Twilio request is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from voice_ai.call_events import CallState
from voice_ai.gateway import AnsweredBy, CallRequest, CallStatus, GatewayError, PlacedCall
from voice_ai.rtp_bridge import RtpBridge, SipCallLog
from voice_ai.sip_message import (
    Codec,
    MalformedSip,
    MediaAnswer,
    SipMessage,
    digest_authorization,
    host_port,
    new_branch,
    new_tag,
    parse,
    sdp_answer,
    sdp_offer,
    tag_of,
    uri_of,
)

log = logging.getLogger(__name__)
T1 = 0.5  # RFC 3261 retransmission base
BUSY = frozenset({486, 600, 603})  # busy here, busy everywhere, declined: Twilio reports a rejection as busy
NO_ANSWER = frozenset({408, 480, 487})  # timeout, unavailable, cancelled by our ring timer
INVALID_NUMBER = frozenset({404, 484, 604})
AUTH = frozenset({401, 403, 407})


@dataclass(frozen=True, slots=True)
class SipTrunk:
    host: str
    port: int = 5060
    username: str | None = None  # digest credentials; None: the trunk trusts our address
    password: str | None = None
    domain: str | None = None  # the host part of From/To/request URIs; None: `host`
    caller_id: str = "careloop"  # From's user part (the number the patient sees, if the trunk allows)
    local_address: str | None = None  # advertised in Via/Contact/SDP; None: the route to the trunk
    rtp_ports: tuple[int, int] = (10000, 10100)  # inclusive; one even port per call, RTCP one above
    codecs: tuple[Codec, ...] = (Codec.PCMA, Codec.PCMU)  # preference order of the offer
    answer_timeout: float = 8.0  # seconds place_call waits for the trunk's first answer


def _route_address(host: str, port: int) -> str:
    """Our address as the trunk sees it on this host's routes (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, port))
        return str(probe.getsockname()[0])


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class SipCall:
    """One outbound call: the INVITE transaction, the dialog, and the RTP <-> Media Stream bridge."""

    def __init__(
        self,
        trunk: SipTrunk,
        request: CallRequest,
        stream_for: Callable[[CallRequest, AnsweredBy], tuple[str, Mapping[str, str]]],
        on_status: Callable[[CallStatus], object],
        backend: Executor,
        ports: threading.Lock,
    ) -> None:
        self.trunk, self.request, self.stream_for, self.on_status = trunk, request, stream_for, on_status
        self.backend, self.ports = backend, ports
        self.call_id = secrets.token_hex(12) + "@careloop"
        self.tag, self.cseq = new_tag(), 1
        self.log = SipCallLog()
        self.done = asyncio.Event()
        self._seq = 0
        self._reports: list[asyncio.Future[object]] = []  # status deliveries, awaited before `done`
        self._hangup = asyncio.Event()
        self._answered_at: float | None = None
        self._started_at = time.monotonic()
        self._remote_tag: str | None = None
        self._route: list[str] = []
        self._remote_target = ""
        self._branch = ""
        self._invite = SipMessage()
        self._sip_addr: tuple[str, int] = (self.trunk.host, self.trunk.port)

    # --- set-up -------------------------------------------------------------------------------
    async def begin(self) -> PlacedCall:
        loop = asyncio.get_running_loop()
        self._placed: asyncio.Future[PlacedCall] = loop.create_future()
        # Bound to the interface that routes to the trunk; advertised as `local_address` when set (the
        # public address a NAT maps us to).
        self.bind = _route_address(self.trunk.host, self.trunk.port)
        self.local = self.trunk.local_address or self.bind
        self.sip_transport, self.sip = await loop.create_datagram_endpoint(_Inbox, local_addr=(self.bind, 0))
        self.sip_port = self.sip_transport.get_extra_info("sockname")[1]
        try:
            self.rtp_sock, self.rtcp_sock = self._bind_rtp()
        except GatewayError:
            self.sip_transport.close()
            raise
        self.task = asyncio.create_task(self._run())
        return await self._placed

    def _bind_rtp(self) -> tuple[socket.socket, socket.socket]:
        low, high = self.trunk.rtp_ports
        with self.ports:
            for port in range(low + low % 2, high, 2):
                rtp, rtcp = (
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
                )
                try:
                    rtp.bind((self.bind, port))
                    rtcp.bind((self.bind, port + 1))
                except OSError:
                    rtp.close()
                    rtcp.close()
                    continue
                rtp.setblocking(False)
                rtcp.setblocking(False)
                return rtp, rtcp
        raise GatewayError("no free RTP port in the configured range", permanent=False, code="rtp-ports")

    def _domain(self) -> str:
        return self.trunk.domain or self.trunk.host

    def _status(self, state: CallState, raw: str, **extra: Any) -> None:
        self._seq += 1
        status = CallStatus(self.call_id, state, raw, sequence=self._seq, **extra)
        loop = asyncio.get_running_loop()
        self._reports.append(loop.run_in_executor(self.backend, self.on_status, status))

    def _headers(self, branch: str, method: str, to_tag: str | None) -> list[tuple[str, str]]:
        to = f"<sip:{self.request.to}@{self._domain()}>" + (f";tag={to_tag}" if to_tag else "")
        return [
            ("Via", f"SIP/2.0/UDP {self.local}:{self.sip_port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.trunk.caller_id}@{self._domain()}>;tag={self.tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {method}"),
        ]

    def _send(self, message: SipMessage, addr: tuple[str, int] | None = None) -> None:
        self.sip_transport.sendto(message.encode(), addr or self._sip_addr)

    def _new_invite(self, auth: tuple[str, str] | None = None) -> SipMessage:
        uri = f"sip:{self.request.to}@{self._domain()}"
        self._branch = new_branch()
        headers = [
            *self._headers(self._branch, "INVITE", None),
            ("Contact", f"<sip:{self.trunk.caller_id}@{self.local}:{self.sip_port}>"),
            ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"),
            ("User-Agent", "CareLoop"),
            ("Content-Type", "application/sdp"),
        ]
        if auth is not None:
            headers.append(auth)
        port = self.rtp_sock.getsockname()[1]
        body = sdp_offer(self.local, port, self.trunk.codecs, int(time.time()))
        self._invite = SipMessage(method="INVITE", uri=uri, headers=headers, body=body)
        return self._invite

    def _ack_failure(self, response: SipMessage) -> None:
        """ACK a non-2xx final response: same branch as the INVITE (RFC 3261 17.1.1.3)."""
        headers = self._headers(self._branch, "ACK", tag_of(response.get("To") or ""))
        self._send(SipMessage(method="ACK", uri=self._invite.uri, headers=headers))

    async def _response(self, method: str, until: float, resend: SipMessage | None) -> SipMessage | None:
        """The next response to our current `method` transaction; None when `until` passes. Malformed
        datagrams are noted and skipped; requests from the far end are answered on the way."""
        interval = T1
        next_resend = time.monotonic() + interval
        while (now := time.monotonic()) < until:
            wait = min(until, next_resend) - now if resend is not None else until - now
            try:
                data, addr = await asyncio.wait_for(self.sip.queue.get(), max(wait, 0.001))
            except TimeoutError:
                if resend is not None and time.monotonic() >= next_resend:
                    self._send(resend)
                    interval = min(interval * 2, 4.0)
                    next_resend = time.monotonic() + interval
                continue
            if not data:  # hang_up() while ringing
                return None
            try:
                message = parse(data)
            except MalformedSip as exc:
                self.log.malformed.append(str(exc))
                log.warning("sip call %s: malformed datagram ignored (%s)", self.call_id[:8], exc)
                continue
            if message.get("Call-ID") != self.call_id:
                continue
            if not message.is_response:
                self._on_request(message, addr)
                continue
            number, cseq_method = message.cseq()
            if cseq_method == method and number == self.cseq:
                if message.status >= 100:
                    resend = None  # a provisional stops retransmission (Timer A)
                return message
            if cseq_method == "INVITE" and 200 <= message.status < 300 and self._remote_tag is not None:
                self._send_ack()  # a retransmitted 200: our ACK was lost
        return None

    def _fail_before_placed(self, error: GatewayError) -> None:
        if not self._placed.done():
            self._placed.set_exception(error)

    def _placed_as(self, state: CallState) -> None:
        if not self._placed.done():
            self._placed.set_result(PlacedCall(self.call_id, state))

    # --- the call -------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            answer = await self._invite_transaction()
            if answer is not None:
                await self._bridge(answer)
        except GatewayError as exc:
            self._fail_before_placed(exc)
        except Exception as exc:  # a bug or a lost socket: the call is over, the dialer must know
            log.exception("sip call %s failed", self.call_id[:8])
            if self._placed.done():
                self._status(CallState.FAILED, "failed")
            else:
                self._fail_before_placed(
                    GatewayError(f"SIP call failed: {type(exc).__name__}", permanent=False)
                )
        finally:
            self.sip_transport.close()
            self.rtp_sock.close()
            self.rtcp_sock.close()
            await asyncio.gather(*self._reports, return_exceptions=True)
            self.done.set()

    async def _invite_transaction(self) -> MediaAnswer | None:
        """INVITE until a final response: the media answer on 2xx, None after a failure was reported."""
        invite = self._new_invite()
        self._send(invite)
        first_deadline = time.monotonic() + self.trunk.answer_timeout
        ring_deadline: float | None = None
        authed = False
        cancelled = False
        while True:
            until = ring_deadline if ring_deadline is not None else first_deadline
            if cancelled:
                until = time.monotonic() + 32 * T1
            response = await self._response("INVITE", until, None if ring_deadline else invite)
            if response is None and self._hangup.is_set() and ring_deadline is None:
                raise GatewayError("hung up before the trunk answered", permanent=False, code="cancelled")
            if response is None:
                if ring_deadline is None:
                    why = f"; malformed: {self.log.malformed[-1]}" if self.log.malformed else ""
                    code = "malformed" if self.log.malformed else "timeout"
                    raise GatewayError(
                        f"the SIP trunk did not answer the INVITE{why}", permanent=False, code=code
                    )
                if cancelled:  # no 487 to our CANCEL: count it as unanswered all the same
                    self._end_unanswered(CallState.NO_ANSWER, "no-answer", None)
                    return None
                await self._cancel()
                cancelled = True
                continue
            if response.status < 200:
                if ring_deadline is None:
                    ring_deadline = time.monotonic() + self.request.ring_seconds
                    self._placed_as(CallState.QUEUED)
                if response.status in (180, 183):
                    self._status(CallState.RINGING, "ringing")
                continue
            self.log.final_code = response.status
            if 200 <= response.status < 300:
                self._placed_as(CallState.ANSWERED)
                answer = self._established(response)
                if answer is not None and not cancelled:
                    return answer
                # Answered as our CANCEL crossed it, or with media we cannot use: end it at once.
                await self._bye()
                self.log.ended_by = "us"
                if answer is None:
                    self._status(CallState.FAILED, "failed", duration_seconds=0)
                else:
                    self._end_unanswered(CallState.NO_ANSWER, "no-answer", None)
                return None
            self._ack_failure(response)
            if response.status in (401, 407) and not authed and self.trunk.username and self.trunk.password:
                header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                challenge = response.get(header)
                if challenge is None:
                    raise GatewayError(
                        f"SIP {response.status} without a challenge", permanent=True, code="auth"
                    )
                try:
                    value = digest_authorization(
                        challenge,
                        method="INVITE",
                        uri=invite.uri,
                        username=self.trunk.username,
                        password=self.trunk.password,
                    )
                except MalformedSip as exc:
                    raise GatewayError(f"SIP {response.status}: {exc}", permanent=True, code="auth") from None
                authed = True
                self.cseq += 1
                name = "Authorization" if response.status == 401 else "Proxy-Authorization"
                invite = self._new_invite((name, value))
                self._send(invite)
                first_deadline = time.monotonic() + self.trunk.answer_timeout
                continue
            if response.status in AUTH and not self._placed.done():
                what = "refused our credentials" if authed else "wants credentials we do not have"
                if response.status == 403:
                    what = "forbids this call (403): check the username, password and caller id"
                raise GatewayError(f"the SIP trunk {what}", permanent=True, code=f"sip-{response.status}")
            self._end_unanswered(*self._failure_state(response.status, cancelled), response.status)
            return None

    @staticmethod
    def _failure_state(code: int, cancelled: bool) -> tuple[CallState, str]:
        if code in BUSY:
            return CallState.BUSY, "busy"
        if code in NO_ANSWER or (cancelled and code == 487):
            return CallState.NO_ANSWER, "no-answer"
        return CallState.FAILED, "failed"

    def _end_unanswered(self, state: CallState, raw: str, code: int | None) -> None:
        if not self._placed.done() and code in INVALID_NUMBER:
            raise GatewayError(f"SIP {code}: the number is not reachable", permanent=True, code=f"sip-{code}")
        self._placed_as(state)
        self._status(state, raw, duration_seconds=0)

    async def _cancel(self) -> None:
        self.log.ended_by = "cancel"
        headers = self._headers(self._branch, "CANCEL", None)
        cancel = SipMessage(method="CANCEL", uri=self._invite.uri, headers=headers)
        self._send(cancel)

    def _established(self, ok: SipMessage) -> MediaAnswer | None:
        """The dialog from a 2xx (ACKed here); its media, or None when the SDP is unusable."""
        self._remote_tag = tag_of(ok.get("To") or "")
        self._invite_cseq = self.cseq
        # A UAC's route set is the Record-Route entries in reverse (RFC 3261 12.1.2).
        recorded = [uri_of(r.strip()) for h in ok.get_all("Record-Route") for r in h.split(",")]
        self._route = recorded[::-1]
        contact = ok.get("Contact")
        self._remote_target = uri_of(contact) if contact else self._invite.uri
        with contextlib.suppress(MalformedSip):  # unreadable: keep sending to the trunk
            target = self._route[0] if self._route else self._remote_target
            self._sip_addr = host_port(target, self.trunk.port)
        self._send_ack()
        try:
            return sdp_answer(ok.body, self.trunk.codecs)
        except MalformedSip as exc:
            self.log.malformed.append(str(exc))
            log.warning("sip call %s: answered with unusable SDP (%s); hanging up", self.call_id[:8], exc)
            return None

    def _in_dialog(self, method: str, branch: str | None = None) -> SipMessage:
        headers = self._headers(branch or new_branch(), method, self._remote_tag)
        headers += [("Route", f"<{r}>") for r in self._route]
        return SipMessage(method=method, uri=self._remote_target, headers=headers)

    def _send_ack(self) -> None:
        ack = self._in_dialog("ACK")
        ack.headers = [
            ("CSeq", f"{self._invite_cseq} ACK") if k == "CSeq" else (k, v) for k, v in ack.headers
        ]
        self._send(ack)

    def _on_request(self, request: SipMessage, addr: tuple[str, int]) -> None:
        """BYE, OPTIONS or a re-INVITE from the far end (ACKs need no answer)."""
        if request.method == "ACK":
            return
        vias = [("Via", v) for v in request.get_all("Via")]
        copied = [(k, request.get(k) or "") for k in ("From", "To", "Call-ID", "CSeq")]
        ok = SipMessage(status=200, reason="OK", headers=vias + copied)
        if request.method == "INVITE":  # a session refresh: the same media as before
            ok.headers += [("Contact", f"<sip:{self.trunk.caller_id}@{self.local}:{self.sip_port}>")]
            ok.headers += [("Content-Type", "application/sdp")]
            ok.body = self._invite.body
        if request.method == "BYE":
            self.log.ended_by = self.log.ended_by or "them"
            self.log.bye_confirmed = True
            self._hangup.set()
        if request.method not in ("BYE", "INVITE", "OPTIONS"):
            ok.status, ok.reason = 501, "Not Implemented"
        self._send(ok, addr)  # where it came from (RFC 3581 rport): the path NAT keeps open

    async def hang_up(self) -> None:
        """BYE when the call is up; CANCEL while it rings (the INVITE loop wakes and cancels)."""
        self._hangup.set()
        if self._answered_at is None:
            self.sip.queue.put_nowait((b"", ("", 0)))

    # --- media ------------------------------------------------------------------------------------
    async def _bridge(self, answer: MediaAnswer) -> None:
        self._answered_at = time.monotonic()
        self._status(CallState.ANSWERED, "in-progress", answered_by=AnsweredBy.UNKNOWN)
        bridge = RtpBridge(self.rtp_sock, self.rtcp_sock, answer, self.call_id, self.log)
        sip = asyncio.create_task(self._sip_in())
        try:
            loop = asyncio.get_running_loop()
            url, params = await loop.run_in_executor(
                self.backend, self.stream_for, self.request, AnsweredBy.UNKNOWN
            )
            await bridge.run(url, params, self._hangup, lambda: self.log.ended_by == "them")
        finally:  # whatever broke the stream, the line must not stay up
            sip.cancel()
            await asyncio.gather(sip, return_exceptions=True)
            if self.log.ended_by != "them":
                self.log.ended_by = "us"
                await self._bye()
            seconds = round(time.monotonic() - self._answered_at)
            self._status(
                CallState.COMPLETED, "completed", answered_by=AnsweredBy.UNKNOWN, duration_seconds=seconds
            )

    async def _bye(self) -> None:
        self.cseq += 1
        bye = self._in_dialog("BYE")
        self._send(bye)
        response = await self._response("BYE", time.monotonic() + 32 * T1, bye)
        self.log.bye_confirmed = response is not None and 200 <= response.status < 300

    async def _sip_in(self) -> None:
        """In-dialog requests while the call is up (the far end's BYE ends it)."""
        while True:
            data, addr = await self.sip.queue.get()
            if not data:  # a hang_up() that raced the answer: the stop event ends the call
                continue
            try:
                message = parse(data)
            except MalformedSip as exc:
                self.log.malformed.append(str(exc))
                continue
            if message.get("Call-ID") != self.call_id:
                continue
            if not message.is_response:
                self._on_request(message, addr)
            elif message.cseq()[1] == "INVITE" and 200 <= message.status < 300:
                self._send_ack()
