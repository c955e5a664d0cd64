"""A SIP trunk gateway: places calls over SIP/RTP (G.711, RFC 4733 keys) and bridges each answered call
to our Media Stream WebSocket, so the call driver and session run as they do behind Twilio.

Twilio is a bridge between the telephone network and our WebSocket; this module is the same bridge
for a SIP trunk (a carrier's, or a hospital PBX). It is a small user agent client written here rather
than pyVoIP (GPLv3; it REGISTERs before it can call, offers PCMU only and converts audio to 8-bit
linear on the way) or pjsua2 (no wheels on PyPI). Per call: one UDP socket for SIP (digest auth on a
401/407, CANCEL after `ring_seconds`, BYE either way), one even RTP port from the configured range
with RTCP above it, 20 ms packets played out on a clock, marks echoed when the audio before them
has been sent, clear honoured at once. Status changes go to `on_status` as Twilio's callbacks would,
numbered so late ones are ignored. Everything runs on one event loop in a thread of its own; the
backend's callbacks (`stream_for`, `on_status`) run in a thread pool, never on that loop.

The process that places calls must live as long as its calls: the scheduler's dialer, not a
short-lived job (docs/voice.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from voice_ai.gateway import AnsweredBy, CallRequest, CallStatus, GatewayName, PlacedCall, RecordingReady
from voice_ai.rtp_bridge import SipCallLog
from voice_ai.sip_call import SipCall, SipTrunk

__all__ = ["SipCallLog", "SipGateway", "SipTrunk"]


class SipGateway:
    """`voice_ai.gateway.Gateway` over a SIP trunk. `stream_for(request, answered_by)` gives the
    Media Stream URL and parameters for an answered call; `on_status` receives each status change."""

    name = GatewayName.SIP

    def __init__(
        self,
        trunk: SipTrunk,
        stream_for: Callable[[CallRequest, AnsweredBy], tuple[str, Mapping[str, str]]],
        on_status: Callable[[CallStatus], object],
    ) -> None:
        self.trunk, self.stream_for, self.on_status = trunk, stream_for, on_status
        self.calls: dict[str, SipCall] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sip-gateway")
        self._thread.start()
        self._ports = threading.Lock()
        # The backend's callbacks block on the database: never on the media loop.
        self.backend = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sip-backend")

    def place_call(self, request: CallRequest) -> PlacedCall:
        """Send the INVITE and wait for the trunk's first word on it: an auth or transport failure is
        a GatewayError here; busy, no answer and the call's end come later through `on_status`."""
        self._forget_finished()
        # the campus's number, where the trunk lets us present one; else the trunk's own
        trunk = replace(self.trunk, caller_id=request.caller_id) if request.caller_id else self.trunk
        call = SipCall(trunk, request, self.stream_for, self.on_status, self.backend, self._ports)
        future = asyncio.run_coroutine_threadsafe(call.begin(), self._loop)
        placed = future.result(timeout=self.trunk.answer_timeout * 3 + 5)
        self.calls[placed.provider_id] = call
        return placed

    def _forget_finished(self, keep: int = 100) -> None:
        """Finished calls stay for `wait` and their line logs, the newest `keep` of them."""
        finished = [pid for pid, call in self.calls.items() if call.done.is_set()]
        for pid in finished[: max(0, len(finished) - keep)]:
            del self.calls[pid]

    def hang_up(self, provider_id: str) -> None:
        call = self.calls.get(provider_id)
        if call is not None:
            asyncio.run_coroutine_threadsafe(call.hang_up(), self._loop).result(timeout=10)

    def wait(self, provider_id: str, timeout: float) -> SipCallLog:
        """Block until the call is over (tests, benches and a clean shutdown); its line log."""
        call = self.calls[provider_id]
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(call.done.wait(), timeout), self._loop).result()
        return call.log

    def close(self) -> None:
        """Hang up what is still up, wait for each call's end, then stop the loop and the threads."""
        for provider_id in list(self.calls):
            with contextlib.suppress(Exception):
                self.hang_up(provider_id)
                self.wait(provider_id, 20)

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_the_rest(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self.backend.shutdown(wait=True)

    def parse_status(self, params: Mapping[str, str]) -> CallStatus:
        raise NotImplementedError("the SIP gateway delivers CallStatus values, not HTTP callbacks")

    def parse_recording(self, params: Mapping[str, str]) -> RecordingReady:
        raise NotImplementedError("the SIP gateway does not record; the server keeps answer audio")
