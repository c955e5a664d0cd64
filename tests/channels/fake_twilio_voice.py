"""A real local HTTP server playing Twilio's Calls API (create, hang up), checking every request we make.

    with FakeTwilioVoice() as fake:
        client = twilio_client(account_sid=fake.account_sid, auth_token=fake.auth_token,
                               api_base=fake.base_url)
        TwilioVoice(client, caller_id="+15005550006").place_call(request)
        fake.calls[-1].params["MachineDetection"]        # "Enable"
        fake.calls[-1].lists["StatusCallbackEvent"]       # ["initiated", "ringing", "answered", "completed"]
        url, params, signature = fake.answer_webhook(sid, answered_by="human")
        url, params, signature = fake.status_callback(sid, "completed", duration=42)

``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (form, HTTP Basic auth): 401 (20003) on bad
credentials, 404 (20404) for another account, 400 with 21201/21211 for a missing or non-E.164 To,
21213/21212 for a missing or bad From, 21205 when neither Url nor Twiml is given or Url is not http(s),
21609 for a bad StatusCallback / RecordingStatusCallback, and 21626 for a MachineDetection,
StatusCallbackEvent, RecordingStatusCallbackEvent or Timeout value Twilio does not take. Success is
201 with the JSON Twilio returns ("sid": "CA" + 32 hex, "status": "queued").
``POST .../Calls/{CallSid}.json`` with Status=completed|canceled hangs up (200; 20404 for an unknown
call). `fail_next(status, code)` makes the next request fail.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.channels.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sign

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CALLS = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Calls(?:/(?P<sid>CA[0-9a-f]{32}))?\.json$")
STATUS_EVENTS = {"initiated", "ringing", "answered", "completed"}
RECORDING_EVENTS = {"in-progress", "completed", "absent"}
MACHINE_DETECTION = {"Enable", "DetectMessageEnd"}


@dataclass
class Request:
    path: str
    params: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    answered: int = 0
    sid: str | None = None


def _http_url(value: str | None) -> bool:
    return value is not None and urlsplit(value).scheme in {"http", "https"} and bool(urlsplit(value).netloc)


def call_problem(params: dict[str, str], lists: dict[str, list[str]]) -> int | None:
    """The error code Twilio answers a malformed Calls request with, or None when it is fine."""
    if not params.get("To"):
        return 21201
    if not _E164.match(params["To"]):
        return 21211
    if not params.get("From"):
        return 21213
    if not _E164.match(params["From"]):
        return 21212
    if not params.get("Twiml") and not _http_url(params.get("Url")):
        return 21205
    for name in ("StatusCallback", "RecordingStatusCallback"):
        if name in params and not _http_url(params[name]):
            return 21609
    if not set(lists.get("StatusCallbackEvent", [])) <= STATUS_EVENTS:
        return 21626
    if not set(lists.get("RecordingStatusCallbackEvent", [])) <= RECORDING_EVENTS:
        return 21626
    if "MachineDetection" in params and params["MachineDetection"] not in MACHINE_DETECTION:
        return 21626
    if "Timeout" in params and not (params["Timeout"].isdigit() and 5 <= int(params["Timeout"]) <= 600):
        return 21626
    if "Record" in params and params["Record"] not in {"true", "false"}:
        return 21626
    return None


class FakeTwilioVoice:
    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.requests: list[Request] = []
        self.hung_up: list[str] = []
        self._fail: list[tuple[int, int | None]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
            name="fake-twilio-voice",
        )

    def __enter__(self) -> FakeTwilioVoice:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def calls(self) -> list[Request]:
        """Calls the fake accepted (201)."""
        return [r for r in self.requests if r.answered == 201]

    def fail_next(self, status: int, code: int | None = None) -> None:
        with self._lock:
            self._fail.append((status, code))

    def _call(self, sid: str) -> Request:
        return next(r for r in self.calls if r.sid == sid)

    def answer_webhook(self, sid: str, answered_by: str = "human") -> tuple[str, dict[str, str], str]:
        """(Url, form params, X-Twilio-Signature) of Twilio's request for TwiML once AMD is done."""
        sent = self._call(sid)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "From": sent.params["From"],
            "To": sent.params["To"],
            "AnsweredBy": answered_by,
            "MachineDetectionDuration": "2140",
        }
        url = sent.params["Url"]
        return url, params, sign(url, params, self.auth_token)

    def status_callback(
        self,
        sid: str,
        status: str,
        *,
        sequence: int = 0,
        duration: int | None = None,
        answered_by: str | None = None,
    ) -> tuple[str, dict[str, str], str]:
        sent = self._call(sid)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": sent.params["From"],
            "To": sent.params["To"],
            "SequenceNumber": str(sequence),
            "Timestamp": "Wed, 02 Dec 2026 19:00:00 +0000",
        }
        if duration is not None:
            params |= {"CallDuration": str(duration), "Duration": str(max(1, duration // 60))}
        if answered_by is not None:
            params["AnsweredBy"] = answered_by
        url = sent.params["StatusCallback"]
        return url, params, sign(url, params, self.auth_token)

    def recording_callback(self, sid: str, seconds: int = 40) -> tuple[str, dict[str, str], str]:
        sent = self._call(sid)
        rec = "RE" + secrets.token_hex(16)
        params = {
            "AccountSid": self.account_sid,
            "CallSid": sid,
            "RecordingSid": rec,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{rec}",
            "RecordingStatus": "completed",
            "RecordingDuration": str(seconds),
            "RecordingChannels": "1",
            "RecordingSource": "OutboundAPI",
            "RecordingStartTime": "Wed, 02 Dec 2026 19:00:00 +0000",
            "RecordingTrack": "both",
        }
        url = sent.params["RecordingStatusCallback"]
        return url, params, sign(url, params, self.auth_token)


def _handler_for(fake: FakeTwilioVoice) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            lists = parse_qs(raw, keep_blank_values=True)
            record = Request(self.path, {k: v[-1] for k, v in lists.items()}, lists)
            with fake._lock:
                fake.requests.append(record)
                failure = fake._fail.pop(0) if fake._fail else None
            match = _CALLS.match(urlsplit(self.path).path)
            header = self.headers.get("Authorization", "")
            user, _, password = (
                base64.b64decode(header[6:]).decode().partition(":")
                if header.startswith("Basic ")
                else ("", "", "")
            )
            if match is None:
                return self._answer(record, 404, 20404)
            if (user, password) != (fake.account_sid, fake.auth_token):
                return self._answer(record, 401, 20003)
            if match.group("account") != fake.account_sid:
                return self._answer(record, 404, 20404)
            if failure is not None:
                return self._answer(record, *failure)
            sid = match.group("sid")
            if sid is not None:  # update: hang up
                if sid not in {r.sid for r in fake.calls}:
                    return self._answer(record, 404, 20404)
                if record.params.get("Status") not in {"completed", "canceled"}:
                    return self._answer(record, 400, 21626)
                fake.hung_up.append(sid)
                return self._answer(record, 200, None, {"sid": sid, "status": "completed"})
            problem = call_problem(record.params, lists)
            if problem is not None:
                return self._answer(record, 400, problem)
            record.sid = "CA" + secrets.token_hex(16)
            body = {
                "sid": record.sid,
                "account_sid": fake.account_sid,
                "status": "queued",
                "to": record.params["To"],
                "from": record.params["From"],
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Calls/{record.sid}.json",
            }
            return self._answer(record, 201, None, body)

        def _answer(
            self, record: Request, status: int, code: int | None, body: dict[str, Any] | None = None
        ) -> None:
            record.answered = status
            if body is None:
                body = {"status": status, "message": "Error"}
                if code is not None:
                    body |= {"code": code, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
