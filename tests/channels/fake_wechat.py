"""A real local HTTP server that plays the WeChat official-account API, for adapter, backend and bench tests.

    with FakeWeChat() as fake:
        client = make_client(fake.app_id, fake.secret, api_root=fake.base_url, redis_url=None, timeout=2)
        ...
        assert fake.calls("/cgi-bin/message/custom/send")[0].body["msgtype"] == "text"
        assert fake.problems == []          # every request matched WeChat's documented shape

It serves GET /cgi-bin/token, POST /cgi-bin/message/custom/send, /cgi-bin/message/template/send,
/cgi-bin/qrcode/create, GET /cgi-bin/media/get and GET /sns/oauth2/access_token. Every request is
recorded (`requests`); every API call must carry a valid access token (40001 otherwise, 42001 once
`expire_tokens()` was called) and a body shaped as WeChat documents it (47001 otherwise, with the
reason in `problems`). `fail_next` / `fail_always` program failures globally, per path or per
openid: an errcode, an HTTP status, or a hang (for timeouts). Template sends honour `client_msg_id` as
WeChat documents it: the same openid and id within 10 minutes is delivered once (`delivered_templates`).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN_PATH = "/cgi-bin/token"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
QRCODE_CREATE = "/cgi-bin/qrcode/create"
MEDIA_GET = "/cgi-bin/media/get"
OAUTH_TOKEN = "/sns/oauth2/access_token"

CUSTOM_MSGTYPES = {"text", "image", "voice", "video", "music", "news", "mpnews", "msgmenu", "wxcard"}
QR_ACTIONS = {"QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"}
_OPENID = re.compile(r"^[\w-]{6,64}$")
DEDUPE_SECONDS = 600  # template/send's client_msg_id: "valid for 10 minutes"


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # the parsed JSON body, or None
    raw: bytes

    @property
    def openid(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("touser"), str):
            return str(self.body["touser"])
        return None


@dataclass
class _Rule:
    errcode: int | None
    http_status: int | None
    hang: float | None
    path: str | None
    openid: str | None
    remaining: int | None  # None: forever

    def matches(self, call: Call) -> bool:
        if self.path is not None and call.path != self.path:
            return False
        if self.path is None and call.path == TOKEN_PATH:
            return False  # a global failure is about API calls; fail the token endpoint by naming it
        return self.openid is None or call.openid == self.openid


@dataclass
class FakeWeChat:
    """The fake server. Use as a context manager; `base_url` is what `make_client(api_root=...)` takes."""

    app_id: str = "wx2c2769f8efd9abc2"
    secret: str = "fake-app-secret"
    requests: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # requests that broke WeChat's documented rules
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media_id -> (bytes, mime)
    oauth_codes: dict[str, str] = field(default_factory=dict)  # code -> openid, each usable once
    token_issues: int = 0
    _valid: set[str] = field(default_factory=set)
    _expired: set[str] = field(default_factory=set)
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(200228332))
    # template messages delivered to the patient: (openid, client_msg_id, msgid); a repeat of an
    # openid + client_msg_id within DEDUPE_SECONDS is answered but not delivered again, as WeChat documents
    delivered_templates: list[tuple[str, str | None, int]] = field(default_factory=list)
    _dedupe: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> FakeWeChat:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # otherwise delayed ACKs add ~40 ms to keep-alive answers

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-wechat", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake any hung handler
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeWeChat:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- programming ---------------------------------------------------------------------------------

    def fail_next(
        self,
        *,
        errcode: int | None = None,
        http_status: int | None = None,
        hang: float | None = None,
        path: str | None = None,
        openid: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching API calls with an errcode, an HTTP status, or a hang of `hang` s.

        `path=None` matches every API path except the token endpoint; `openid` matches the body's touser.
        A hang is followed by the errcode/status if given, else by the normal answer.
        """
        self._add_rule(errcode, http_status, hang, path, openid, times)

    def fail_always(
        self,
        *,
        errcode: int | None = None,
        http_status: int | None = None,
        hang: float | None = None,
        path: str | None = None,
        openid: str | None = None,
    ) -> None:
        """Like `fail_next`, for every matching call until `reset_failures()`."""
        self._add_rule(errcode, http_status, hang, path, openid, None)

    def reset_failures(self) -> None:
        with self._lock:
            self._rules.clear()

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001 (access_token expired)."""
        with self._lock:
            self._expired |= self._valid
            self._valid.clear()

    def calls(self, path: str | None = None) -> list[Call]:
        """Recorded requests to `path` (all API requests except token fetches when None)."""
        with self._lock:
            return [c for c in self.requests if (c.path == path if path else c.path != TOKEN_PATH)]

    def _add_rule(
        self,
        errcode: int | None,
        http_status: int | None,
        hang: float | None,
        path: str | None,
        openid: str | None,
        times: int | None,
    ) -> None:
        if errcode is None and http_status is None and hang is None:
            raise ValueError("say how to fail: errcode, http_status or hang")
        with self._lock:
            self._rules.append(_Rule(errcode, http_status, hang, path, openid, times))

    # -- serving -------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = None
        call = Call(method, url.path, dict(parse_qsl(url.query)), body, raw)
        with self._lock:
            self.requests.append(call)
            rule = next((r for r in self._rules if r.matches(call)), None)
            if rule is not None and rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
        try:
            if rule is None:
                self._route(handler, method, call)
                return
            if rule.hang is not None:
                self._release.wait(rule.hang)
            if rule.http_status is not None:
                self._reply(handler, rule.http_status, b"<html>server error</html>", "text/html")
            elif rule.errcode is not None:
                self._json(handler, {"errcode": rule.errcode, "errmsg": f"fake errcode {rule.errcode}"})
            else:
                self._route(handler, method, call)
        except ConnectionError:  # the client gave up (timed out) before we answered
            pass

    def _route(self, handler: BaseHTTPRequestHandler, method: str, call: Call) -> None:
        routes = {
            ("GET", TOKEN_PATH): self._token,
            ("POST", CUSTOM_SEND): self._custom_send,
            ("POST", TEMPLATE_SEND): self._template_send,
            ("POST", QRCODE_CREATE): self._qrcode,
            ("GET", MEDIA_GET): self._media,
            ("GET", OAUTH_TOKEN): self._oauth,
        }
        route = routes.get((method, call.path))
        if route is None:
            self._reply(handler, 404, b"not found", "text/plain")
            return
        if call.path not in (TOKEN_PATH, OAUTH_TOKEN):
            token = call.query.get("access_token")
            with self._lock:
                expired, valid = token in self._expired, token in self._valid
            if expired:
                self._json(handler, {"errcode": 42001, "errmsg": "access_token expired"})
                return
            if not valid:
                self._json(
                    handler, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
                )
                return
            if method == "POST" and not isinstance(call.body, dict):
                self._problem(handler, f"{call.path}: body is not a JSON object: {call.raw[:80]!r}")
                return
        route(handler, call)

    def _problem(self, handler: BaseHTTPRequestHandler, problem: str, errcode: int = 47001) -> None:
        with self._lock:
            self.problems.append(problem)
        self._json(handler, {"errcode": errcode, "errmsg": f"data format error: {problem}"})

    def _json(self, handler: BaseHTTPRequestHandler, data: dict[str, Any]) -> None:
        self._reply(handler, 200, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json")

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # -- endpoints -----------------------------------------------------------------------------------

    def _token(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        q = call.query
        if q.get("grant_type") != "client_credential":
            self._problem(handler, f"token: grant_type {q.get('grant_type')!r}", 40002)
        elif q.get("appid") != self.app_id:
            self._json(handler, {"errcode": 40013, "errmsg": "invalid appid"})
        elif q.get("secret") != self.secret:
            self._json(handler, {"errcode": 40125, "errmsg": "invalid appsecret"})
        else:
            with self._lock:
                self.token_issues += 1
                token = f"FAKE_ACCESS_TOKEN_{self.token_issues}"
                self._valid.add(token)
            self._json(handler, {"access_token": token, "expires_in": 7200})

    def _touser(self, handler: BaseHTTPRequestHandler, call: Call) -> bool:
        touser = call.body.get("touser")
        if not isinstance(touser, str) or not _OPENID.match(touser):
            self._problem(handler, f"{call.path}: touser {touser!r} is not an openid", 40003)
            return False
        return True

    def _custom_send(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        body = call.body
        if not self._touser(handler, call):
            return
        msgtype = body.get("msgtype")
        if msgtype not in CUSTOM_MSGTYPES or not isinstance(body.get(msgtype), dict):
            self._problem(handler, f"custom/send: msgtype {msgtype!r} without its object")
            return
        content = body[msgtype]
        if msgtype == "text" and not (isinstance(content.get("content"), str) and content["content"]):
            self._problem(handler, "custom/send: text.content missing or empty", 44003)
            return
        if msgtype == "msgmenu":
            items = content.get("list")
            ok = (
                isinstance(items, list)
                and items
                and all(
                    isinstance(i, dict)
                    and isinstance(i.get("id"), str)
                    and i["id"]
                    and isinstance(i.get("content"), str)
                    and i["content"]
                    for i in items
                )
                and all(isinstance(content.get(k, ""), str) for k in ("head_content", "tail_content"))
            )
            if not ok:
                self._problem(handler, f"custom/send: bad msgmenu {content!r}")
                return
        self._json(handler, {"errcode": 0, "errmsg": "ok"})

    def _template_send(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        body = call.body
        if not self._touser(handler, call):
            return
        data = body.get("data")
        if not isinstance(body.get("template_id"), str) or not body["template_id"]:
            self._problem(handler, "template/send: template_id missing", 40037)
        elif not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
        ):
            self._problem(handler, f"template/send: data must map keys to {{'value': str}}: {data!r}")
        elif "url" in body and not isinstance(body["url"], str):
            self._problem(handler, "template/send: url is not a string")
        elif "client_msg_id" in body and not isinstance(body["client_msg_id"], str):
            self._problem(handler, "template/send: client_msg_id is not a string")
        else:
            touser, client_msg_id = str(body["touser"]), body.get("client_msg_id")
            now = time.monotonic()
            with self._lock:
                seen = self._dedupe.get((touser, client_msg_id)) if client_msg_id else None
                if seen is not None and now - seen[1] < DEDUPE_SECONDS:
                    msgid = seen[0]  # "only one message is sent" for the same openid + client_msg_id
                else:
                    msgid = next(self._ids)
                    self.delivered_templates.append((touser, client_msg_id, msgid))
                    if client_msg_id:
                        self._dedupe[(touser, client_msg_id)] = (msgid, now)
            self._json(handler, {"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def _qrcode(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        body = call.body
        action = body.get("action_name")
        scene = (body.get("action_info") or {}).get("scene") or {}
        expire = body.get("expire_seconds")
        if action not in QR_ACTIONS:
            self._problem(handler, f"qrcode/create: action_name {action!r}")
        elif "STR" in action and not (
            isinstance(scene.get("scene_str"), str) and 1 <= len(scene["scene_str"]) <= 64
        ):
            self._problem(handler, f"qrcode/create: scene_str {scene.get('scene_str')!r}")
        elif "LIMIT" not in action and not (isinstance(expire, int) and 0 < expire <= 2592000):
            self._problem(handler, f"qrcode/create: temporary code needs expire_seconds, got {expire!r}")
        elif "LIMIT" in action and expire is not None:
            self._problem(handler, "qrcode/create: a permanent code takes no expire_seconds")
        else:
            with self._lock:
                n = next(self._ids)
            answer: dict[str, Any] = {
                "ticket": f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{n}==",
                "url": f"http://weixin.qq.com/q/fake{n}",
            }
            if expire is not None:
                answer["expire_seconds"] = expire
            self._json(handler, answer)

    def _media(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        found = self.media.get(call.query.get("media_id", ""))
        if found is None:
            self._json(handler, {"errcode": 40007, "errmsg": "invalid media_id"})
            return
        data, mime = found
        self._reply(handler, 200, data, mime)

    def _oauth(self, handler: BaseHTTPRequestHandler, call: Call) -> None:
        q = call.query
        if q.get("grant_type") != "authorization_code" or q.get("appid") != self.app_id:
            self._problem(handler, f"oauth: grant_type/appid wrong: {q!r}", 40013)
            return
        if q.get("secret") != self.secret:
            self._json(handler, {"errcode": 40125, "errmsg": "invalid appsecret"})
            return
        with self._lock:
            openid = self.oauth_codes.pop(q.get("code", ""), None)
        if openid is None:
            self._json(handler, {"errcode": 40029, "errmsg": "invalid code"})
            return
        self._json(
            handler,
            {
                "access_token": "FAKE_OAUTH_TOKEN",
                "expires_in": 7200,
                "refresh_token": "FAKE_REFRESH_TOKEN",
                "openid": openid,
                "scope": "snsapi_base",
            },
        )
