"""The SIP gateway under load: calls at once through kamailio to baresip on 127.0.0.1, each bridged to
a Media Stream that talks all the time, so every call sends and receives 50 RTP packets a second.

Per level of concurrency it reports the call set-up time (place_call to the phone's 200 OK, digest
round included), how far the play-out clock fell behind its 20 ms schedule (worst lag, packets a whole
frame late: what a caller would hear as gaps), the packets the phone's RTCP says arrived, and the
gateway process's CPU per call-second. The stream's far end is a small WebSocket server that sends
prompt-sized audio and echoes nothing back, not our server: speech engines would dominate the CPU
(bench/voice.py measures them); this measures the bridge. Needs kamailio, baresip and espeak-ng.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import websockets

from tests.sip_peers import running_peers
from voice_ai.gateway import CallRequest, CallStatus
from voice_ai.gateway_sip import SipGateway
from voice_ai.media_stream import SendMark, SendMedia, Start, encode_outbound, parse_inbound

SECOND = bytes(range(0, 256, 32)) * 1000  # a second of loud mu-law (8000 bytes)


def talker(seconds: float) -> tuple[threading.Thread, int, threading.Event]:
    """A WebSocket endpoint that speaks a second of audio a second for `seconds`, then hangs up."""
    ready, box = threading.Event(), {}

    async def handler(ws: Any) -> None:
        sid = ""
        async for raw in ws:
            message = parse_inbound(raw)
            if isinstance(message, Start):
                sid = message.stream_sid
                break
        began = time.monotonic()

        async def drain() -> None:
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())
        n = 0
        while time.monotonic() - began < seconds:
            await ws.send(encode_outbound(sid, SendMedia(SECOND)))
            n += 1
            await ws.send(encode_outbound(sid, SendMark(f"p{n}")))
            await asyncio.sleep(1.0)
        reader.cancel()
        await ws.close()

    async def main() -> None:
        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            box["port"] = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await asyncio.Event().wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(10)
    return thread, int(box["port"]), ready


def level(gateway: SipGateway, answered: dict[str, float], n: int, seconds: float) -> dict[str, Any]:
    cpu0, wall0 = time.process_time(), time.monotonic()
    started: dict[str, float] = {}
    ids = []
    for i in range(n):
        t = time.monotonic()
        placed = gateway.place_call(CallRequest(to="patient", call_ref=str(i), answer_url="", status_url=""))
        started[placed.provider_id] = t
        ids.append(placed.provider_id)
    logs = [gateway.wait(pid, seconds + 60) for pid in ids]
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    setup = [1000 * (answered[pid] - started[pid]) for pid in ids if pid in answered]
    call_seconds = sum(log.rtp_out for log in logs) / 50
    return {
        "calls": n,
        "answered": len(setup),
        "setup_ms_p50": round(statistics.median(setup), 1) if setup else None,
        "setup_ms_max": round(max(setup), 1) if setup else None,
        "late_max_ms": round(max(log.late_max_ms for log in logs), 1),
        "late_packets": sum(log.late_packets for log in logs),
        "packets_out": sum(log.rtp_out for log in logs),
        "packets_in": sum(log.rtp_in for log in logs),
        "peer_received_share": round(
            sum(log.peer_received for log in logs) / max(1, sum(log.rtp_out for log in logs)), 3
        ),
        "cpu_ms_per_call_second": round(1000 * cpu / max(call_seconds, 1e-9), 2),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,5,10", help="calls at once, comma-separated (at most 40)")
    parser.add_argument("--seconds", type=float, default=12.0, help="each call's length")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if not all(1 <= x <= 40 for x in levels) or not 3 <= args.seconds <= 120:
        parser.error("levels 1-40, seconds 3-120")
    answered: dict[str, float] = {}

    def on_status(status: CallStatus) -> None:
        if status.raw_status == "in-progress":
            answered[status.provider_id] = time.monotonic()

    _, port, _ = talker(args.seconds)
    results = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_peers(Path(tmp), phone_rtp_ports=2 * max(levels) + 20) as phone,
    ):
        trunk = phone.trunk()
        gateway = SipGateway(trunk, lambda request, by: (f"ws://127.0.0.1:{port}/", {}), on_status)
        try:
            for n in levels:
                result = level(gateway, answered, n, args.seconds)
                results.append(result)
                print(
                    f"{n:3} calls: set-up p50 {result['setup_ms_p50']} ms (max {result['setup_ms_max']}), "
                    f"play-out lag max {result['late_max_ms']} ms, {result['late_packets']} of "
                    f"{result['packets_out']} packets a frame late, phone got {result['peer_received_share']:.0%} "
                    f"by RTCP, {result['cpu_ms_per_call_second']} ms CPU per call-second",
                    flush=True,
                )
        finally:
            gateway.close()
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} (shared machine)")
    print(json.dumps({"bench": "sip", "seconds": args.seconds, "load": round(load, 1), "levels": results}))


if __name__ == "__main__":
    main()
