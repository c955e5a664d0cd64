"""A real local HTTP server playing Twilio's Messages API and the generic SMS gateway, for tests and benches.

    with FakeTwilio() as fake:
        sms = TwilioSms(account_sid=fake.account_sid, auth_token=fake.auth_token,
                        sender="+15005550006", api_base=fake.base_url)
        sms.send(delivery)
        fake.messages[-1].params["Body"]
        fake.fail_next(status=500)                 # the next request answers 500
        fake.fail_next(code=21211, times=2)        # the next two answer 400 {"code": 21211, ...}
        fake.fail_for("+15005550001", code=21610)  # every request to that number
        fake.hang_next()                           # the next request never answers (client timeout)
        fake.hang_next(accept=True)                # accepted (and sent), but the answer never comes

        gateway = HttpGatewaySms(url=fake.gateway_url, token=fake.gateway_token)
        fake.gateway_requests[-1].json             # {"to", "text", "reference", "callback_url"}
        fake.fail_next(status=400, code="invalid_number")   # gateway error codes are strings

Twilio side: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP Basic auth
(account sid / auth token). Checked like Twilio does: 401 (20003) on bad credentials, 404 (20404) for
another account, 400 with 21604/21603/21602 for a missing To / From-or-MessagingServiceSid /
Body-or-ContentSid, 21211 for a To that is not E.164 (optionally "whatsapp:"-prefixed), 21606 for a bad
From, 21617 for a body over 1600 characters, and malformed MessagingServiceSid / ContentSid /
ContentVariables / StatusCallback. Success is 201 with the JSON Twilio returns ("sid": "SM" + 32 hex,
"status": "queued", or "accepted" when a Messaging Service picks the sender).

Twilio's Messages list, ``GET /2010-04-01/Accounts/{AccountSid}/Messages.json`` with the documented
filters To, From and DateSent (``DateSent``, ``DateSent<``, ``DateSent>`` with a ``YYYY-MM-DD`` GMT date),
newest first, in Twilio's page envelope (``{"messages": [...], "next_page_uri": ..., "page": ...}``).
Twilio has no idempotency key: every accepted create is a new message.

Gateway side: ``POST /gateway/messages`` with ``Authorization: Bearer {gateway_token}`` and the JSON
of `channels.sms_gateway`; answers 200 ``{"id": "gw-…"}``. The same `reference` twice is one message:
the second request answers the first one's id and sends nothing (the contract's idempotency key), so
`gateway_requests` lists each message once and `gateway_repeats` counts the deduplicated requests.

Rules from `fail_next` / `fail_for` / `hang_next` apply to whichever endpoint the request hits; a
`fail_for` rule matches the request's To (Twilio, with or without "whatsapp:") or "to" (gateway).
Rejected requests are recorded too (`.answered` is the status code; `.sid` is None).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

from channels.segments import split_segments

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-auth-token-" + "0" * 16
DEFAULT_GATEWAY_TOKEN = "fake-gateway-token"

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MG = re.compile(r"^MG[0-9a-f]{32}$")
_HX = re.compile(r"^HX[0-9a-f]{32}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_TWILIO_RECORDING = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE\w+)\.mp3$")
_TWILIO_RECORDING_RESOURCE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE\w+)\.json$"
)
_ERROR_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    63016: "Failed to send freeform message because you are outside the allowed window.",
}


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)  # Twilio: form fields (last value of each)
    lists: dict[str, list[str]] = field(default_factory=dict)  # Twilio: every value (MediaUrl repeats)
    json: Any = None  # gateway: the decoded body
    answered: int = 0  # the HTTP status the fake answered
    sid: str | None = None  # the message id it returned, when it accepted
    created: datetime | None = None  # when it accepted


@dataclass
class _Rule:
    status: int
    code: int | str | None
    times: int | None  # None: forever
    to: str | None = None
    hang: float | None = None
    retry_after: str | None = None
    accept: bool = False  # hang after accepting (the provider has the message; the client times out)


class FakeTwilio:
    """Context manager: serves on 127.0.0.1 (ephemeral port); on exit stops and frees hung requests."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        gateway_token: str = DEFAULT_GATEWAY_TOKEN,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.gateway_token = gateway_token
        self.requests: list[Recorded] = []  # everything, in arrival order
        self.recordings: dict[str, bytes] = {}  # RecordingSid -> audio served at .../Recordings/<sid>.mp3
        self._rules: list[_Rule] = []
        self.gateway_references: dict[str, str] = {}  # reference -> the id first answered for it
        self.gateway_repeats = 0  # requests answered from gateway_references (not sent again)
        self.latency = 0.0  # seconds every POST takes before it is handled (a provider's round trip)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-twilio", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url}/gateway/messages"

    # -- what arrived ------------------------------------------------------------------------------
    @property
    def messages(self) -> list[Recorded]:
        """Twilio Messages requests the fake accepted (201)."""
        return [r for r in self.requests if r.json is None and r.sid is not None]

    @property
    def gateway_requests(self) -> list[Recorded]:
        """Gateway requests the fake accepted (200)."""
        return [r for r in self.requests if r.json is not None and r.sid is not None]

    # -- programming failures ----------------------------------------------------------------------
    def fail_next(
        self,
        status: int = 400,
        code: int | str | None = None,
        *,
        times: int = 1,
        retry_after: str | None = None,
    ) -> None:
        """The next `times` requests answer `status` (with Twilio's JSON error for `code` when given)."""
        with self._lock:
            self._rules.append(_Rule(status, code, times, retry_after=retry_after))

    def fail_for(self, to: str, code: int | str | None = None, status: int = 400) -> None:
        """Every request to `to` answers `status` with `code` (Twilio's int code or the gateway's string)."""
        with self._lock:
            self._rules.append(_Rule(status, code, None, to=to.removeprefix("whatsapp:")))

    def hang_next(self, times: int = 1, seconds: float = 30.0, *, accept: bool = False) -> None:
        """The next `times` requests get no answer for `seconds` (or until the fake closes); with
        `accept` they are accepted first (the message is sent; only the answer is lost)."""
        with self._lock:
            self._rules.append(_Rule(0, None, times, hang=seconds, accept=accept))

    def clear_rules(self) -> None:
        """Forget programmed failures (what arrived is kept)."""
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self.requests.clear()
            self.gateway_references.clear()
            self.gateway_repeats = 0

    # -- status callbacks, as Twilio would post them -----------------------------------------------
    def status_callback(
        self, sid: str, status: str = "delivered", error_code: int | None = None
    ) -> tuple[str, dict[str, str], str]:
        """(StatusCallback URL, form params, X-Twilio-Signature) Twilio would post for message `sid`."""
        sent = next(r for r in self.messages if r.sid == sid)
        url = sent.params.get("StatusCallback")
        if not url:
            raise LookupError(f"message {sid} was sent without a StatusCallback")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": sent.params.get("From", "+15005550006"),
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": sent.params["To"],
        }
        if "MessagingServiceSid" in sent.params:
            params["MessagingServiceSid"] = sent.params["MessagingServiceSid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return url, params, sign(url, params, self.auth_token)

    # -- internals ---------------------------------------------------------------------------------
    def _take_rule(self, to: str | None) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.to is not None:
                    if to is not None and to.removeprefix("whatsapp:") == rule.to:
                        return rule
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
        return None


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client killed mid-request (the fault tests do that on purpose)
        super().handle_error(request, client_address)


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # otherwise delayed ACKs add ~40 ms to every keep-alive answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if fake.latency:
                fake._released.wait(fake.latency)
            record = Recorded(path=self.path, headers={k: v for k, v in self.headers.items()})
            with fake._lock:
                fake.requests.append(record)
            match = _TWILIO_MESSAGES.match(urlsplit(self.path).path)
            if match:
                self._twilio(record, raw, match.group("account"))
            elif urlsplit(self.path).path == "/gateway/messages":
                self._gateway(record, raw)
            else:
                self._answer(record, 404, {"code": 20404, "message": _ERROR_TEXT[20404], "status": 404})

        def do_GET(self) -> None:
            """A recording's audio (Twilio: GET <RecordingUrl>.mp3 with the account's basic auth)."""
            record = Recorded(path=self.path, headers={k: v for k, v in self.headers.items()})
            with fake._lock:
                fake.requests.append(record)
            listing = _TWILIO_MESSAGES.match(urlsplit(self.path).path)
            if listing:
                return self._twilio_list(record, listing.group("account"))
            match = _TWILIO_RECORDING.match(urlsplit(self.path).path)
            if self._basic_auth() != (fake.account_sid, fake.auth_token):
                return self._twilio_error(record, 401, 20003)
            audio = fake.recordings.get(match.group("sid")) if match else None
            if match is None or audio is None or match.group("account") != fake.account_sid:
                return self._twilio_error(record, 404, 20404)
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(audio)))
            self.end_headers()
            self.wfile.write(audio)
            return None

        def do_DELETE(self) -> None:
            """Deleting a recording (Twilio: DELETE .../Recordings/<sid>.json: 204, or 404 if none)."""
            record = Recorded(path=self.path, headers={k: v for k, v in self.headers.items()})
            with fake._lock:
                fake.requests.append(record)
            match = _TWILIO_RECORDING_RESOURCE.match(urlsplit(self.path).path)
            if self._basic_auth() != (fake.account_sid, fake.auth_token):
                return self._twilio_error(record, 401, 20003)
            rule = fake._take_rule(None)
            if rule is not None:
                return self._twilio_error(record, rule.status, rule.code)
            with fake._lock:
                gone = match is not None and fake.recordings.pop(match.group("sid"), None) is not None
            if not gone:
                return self._twilio_error(record, 404, 20404)
            record.answered = 204
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None

        # -- Twilio ------------------------------------------------------------------------------------
        def _twilio(self, record: Recorded, raw: bytes, account: str) -> None:
            record.lists = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            record.params = {k: v[-1] for k, v in record.lists.items()}
            if self._basic_auth() != (fake.account_sid, fake.auth_token):
                return self._twilio_error(record, 401, 20003)
            if account != fake.account_sid:
                return self._twilio_error(record, 404, 20404)
            rule = fake._take_rule(record.params.get("To"))
            if rule is not None and not rule.accept and self._apply(record, rule, gateway=False):
                return None
            problem = _twilio_problem(record.params)
            if problem is not None:
                return self._twilio_error(record, 400, problem)
            record.sid, record.created = "SM" + secrets.token_hex(16), datetime.now(UTC)
            if rule is not None and self._apply(record, rule, gateway=False):
                return None
            self._answer(record, 201, _twilio_message_json(fake.account_sid, record))
            return None

        def _twilio_list(self, record: Recorded, account: str) -> None:
            """The Messages list: To / From / DateSent filters, newest first, one page of PageSize."""
            if self._basic_auth() != (fake.account_sid, fake.auth_token):
                return self._twilio_error(record, 401, 20003)
            if account != fake.account_sid:
                return self._twilio_error(record, 404, 20404)
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            rule = fake._take_rule(query.get("To"))
            if rule is not None and not rule.accept and self._apply(record, rule, gateway=False):
                return None
            found = [m for m in reversed(fake.messages) if _listed(m, query)]
            size = min(int(query.get("PageSize", "50") or 50), 1000)
            uri = f"/2010-04-01/Accounts/{account}/Messages.json"
            self._answer(
                record,
                200,
                {
                    "messages": [_twilio_message_json(fake.account_sid, m) for m in found[:size]],
                    "end": max(0, min(size, len(found)) - 1),
                    "first_page_uri": f"{uri}?PageSize={size}&Page=0",
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": size,
                    "previous_page_uri": None,
                    "start": 0,
                    "uri": f"{uri}?PageSize={size}&Page=0",
                },
            )
            return None

        def _basic_auth(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            return user, password

        def _twilio_error(self, record: Recorded, status: int, code: int | str | None) -> None:
            body: dict[str, Any] = {"status": status, "message": "Error"}
            if code is not None:
                body |= {
                    "code": code,
                    "message": _ERROR_TEXT.get(int(code), "Error") if str(code).isdigit() else str(code),
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                }
            self._answer(record, status, body)

        # -- gateway -----------------------------------------------------------------------------------
        def _gateway(self, record: Recorded, raw: bytes) -> None:
            try:
                record.json = json.loads(raw)
            except ValueError:
                record.json = {}
                return self._answer(record, 400, {"error": {"code": "bad_json", "message": "not JSON"}})
            if self.headers.get("Authorization") != f"Bearer {fake.gateway_token}":
                return self._answer(record, 401, {"error": {"code": "unauthorized", "message": "bad token"}})
            body = record.json if isinstance(record.json, dict) else {}
            rule = fake._take_rule(body.get("to") if isinstance(body.get("to"), str) else None)
            if rule is not None and not rule.accept and self._apply(record, rule, gateway=True):
                return None
            if not isinstance(body.get("to"), str) or not _E164.match(body["to"]):
                return self._answer(record, 400, {"error": {"code": "invalid_number", "message": "bad to"}})
            if not isinstance(body.get("text"), str) or not isinstance(body.get("reference"), str):
                return self._answer(record, 400, {"error": {"code": "bad_request", "message": "text/ref"}})
            with fake._lock:
                known = fake.gateway_references.get(body["reference"])
                if known is None:
                    record.sid, record.created = "gw-" + secrets.token_hex(8), datetime.now(UTC)
                    fake.gateway_references[body["reference"]] = record.sid
                else:
                    fake.gateway_repeats += 1
            if rule is not None and self._apply(record, rule, gateway=True):
                return None
            self._answer(record, 200, {"id": known or record.sid})
            return None

        # -- shared ------------------------------------------------------------------------------------
        def _apply(self, record: Recorded, rule: _Rule, *, gateway: bool) -> bool:
            if rule.hang is not None:
                fake._released.wait(rule.hang)
                record.answered = -1
                self.close_connection = True
                return True
            extra = {"Retry-After": rule.retry_after} if rule.retry_after else {}
            if gateway:
                error = {"code": rule.code, "message": "programmed failure"} if rule.code else None
                self._answer(record, rule.status, {"error": error} if error else {}, extra)
            elif rule.code is None and rule.status >= 500:
                self._answer(record, rule.status, {"status": rule.status, "message": "Internal error"}, extra)
            else:
                self._twilio_error(record, rule.status, rule.code)
            return True

        def _answer(
            self,
            record: Recorded,
            status: int,
            body: Mapping[str, Any],
            extra: Mapping[str, str] | None = None,
        ) -> None:
            record.answered = status
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client is gone (killed mid-request): as a provider would

    return Handler


def _twilio_problem(params: Mapping[str, str]) -> int | None:
    """The error code Twilio answers a malformed Messages request with, or None when it is fine."""
    to = params.get("To")
    if not to:
        return 21604
    if not _E164.match(to.removeprefix("whatsapp:")):
        return 21211
    sender, service = params.get("From"), params.get("MessagingServiceSid")
    if not sender and not service:
        return 21603
    if service is not None and not _MG.match(service):
        return 21701  # "The Messaging Service does not exist"
    if sender and not (_E164.match(sender.removeprefix("whatsapp:")) or _ALPHANUMERIC_SENDER.match(sender)):
        return 21606
    if sender and to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
        return 21910  # "Invalid From and To pair"
    body, content = params.get("Body"), params.get("ContentSid")
    if not body and not content and not params.get("MediaUrl"):
        return 21602
    if content is not None and not _HX.match(content):
        return 21655  # "The ContentSid is Invalid"
    if "ContentVariables" in params:
        try:
            if content is None or not isinstance(json.loads(params["ContentVariables"]), dict):
                return 21656  # "The ContentVariables Parameter is invalid"
        except ValueError:
            return 21656
    if body and len(body) > 1600:
        return 21617
    callback = params.get("StatusCallback")
    if callback is not None and not urlsplit(callback).scheme.startswith("http"):
        return 21609  # "Invalid StatusCallback"
    return None


def _listed(message: Recorded, query: Mapping[str, str]) -> bool:
    """Whether the Messages list's filters keep this message (DateSent compares GMT dates)."""
    params = message.params
    if "To" in query and params.get("To") != query["To"]:
        return False
    if "From" in query and params.get("From") != query["From"]:
        return False
    day = (message.created or datetime.now(UTC)).date().isoformat()
    for key, keep in (
        ("DateSent", day.__eq__),
        ("DateSent<", day.__le__),
        ("DateSent>", day.__ge__),
    ):
        if key in query and not keep(query[key][:10]):
            return False
    return True


def _twilio_message_json(account_sid: str, message: Recorded) -> dict[str, Any]:
    assert message.sid is not None
    sid, params = message.sid, message.params
    num_media = len(message.lists.get("MediaUrl", []))
    now = format_datetime(message.created or datetime.now(UTC), usegmt=True)
    body = params.get("Body", "")
    service = params.get("MessagingServiceSid")
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": params.get("From"),
        "messaging_service_sid": service,
        "num_media": str(num_media),
        "num_segments": str(max(1, len(split_segments(body)))),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if service and not params.get("From") else "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
        "to": params["To"],
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


def incoming_sms(
    sender: str = "+8613800138000", body: str = "1", *, to: str = "+15005550006", sid: str | None = None
) -> dict[str, str]:
    """The form params of Twilio's incoming-message webhook for an SMS (documented field set)."""
    sid = sid or "SM" + secrets.token_hex(16)
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "CN",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def incoming_whatsapp(
    sender: str = "+84912345678",
    body: str = "Có",
    *,
    button_payload: str | None = None,
    to: str = "+15005550006",
    sid: str | None = None,
) -> dict[str, str]:
    """The form params of Twilio's incoming-message webhook for WhatsApp (a button tap when given)."""
    sid = sid or "SM" + secrets.token_hex(16)
    params = {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Nguyễn Văn An",
        "MessageType": "button" if button_payload else "text",
        "SmsSid": sid,
        "WaId": sender.lstrip("+"),
        "SmsStatus": "received",
        "Body": body,
        "To": f"whatsapp:{to}",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "From": f"whatsapp:{sender}",
        "ApiVersion": "2010-04-01",
    }
    if button_payload:
        params |= {"ButtonText": body, "ButtonPayload": button_payload}
    return params


def running() -> Iterator[FakeTwilio]:
    """Generator for a pytest fixture: ``fake_twilio = pytest.fixture(running)``."""
    with FakeTwilio() as fake:
        yield fake
