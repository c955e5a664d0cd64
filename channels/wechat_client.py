"""The WeChat API client CareLoop uses: one shared access token, a configurable API root, clear errors.

`make_client` builds a wechatpy `WeChatClient` whose token lives in Redis when a URL is given, so
every worker shares one token (WeChat allows 2,000 token fetches a day and each fetch retires the
previous token five minutes later). wechatpy's own retry on an expired token recurses without a
bound, so it is switched off; `call` retries once after dropping the stale token instead.
Also here: QR codes with a scene, web OAuth (snsapi_base) for the openid, and media download.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import redis
import requests
from wechatpy import WeChatClient, WeChatOAuth
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

T = TypeVar("T")

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
TOKEN_MARGIN_SECONDS = 300  # forget a token this long before WeChat does
MAX_QR_EXPIRE_SECONDS = 30 * 24 * 3600
_STATE = re.compile(r"^[A-Za-z0-9]{0,128}$")  # what WeChat allows in the OAuth `state`


class WeChatApiError(Exception):
    """A WeChat call (QR code, media, OAuth) failed. `transient` means it may work if retried later."""

    def __init__(self, reason: str, *, code: str | None, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Fault:
    """What went wrong in one call: WeChat's errcode (or None), an HTTP status, and whether to retry."""

    reason: str
    errcode: int | None
    code: str
    transient: bool


def fault_of(exc: BaseException) -> Fault | None:
    """Classify an exception raised by a WeChat call; None when it is not a provider/network failure."""
    if isinstance(exc, requests.Timeout):
        return Fault(f"wechat timed out: {exc}", None, "timeout", True)
    if isinstance(exc, requests.RequestException):
        return Fault(f"wechat unreachable: {exc}", None, "connection", True)
    if isinstance(exc, redis.RedisError):
        return Fault(f"token store unreachable: {exc}", None, "token_store", True)
    if not isinstance(exc, WeChatClientException):
        return None
    if exc.errcode is None:
        status = getattr(exc.response, "status_code", None)
        transient = status is None or status >= 500 or status == 429
        return Fault(f"wechat answered HTTP {status}", None, f"http_{status}", transient)
    errcode = int(exc.errcode)
    transient = errcode in TRANSIENT_ERRCODES
    return Fault(f"wechat errcode {errcode}: {exc.errmsg}", errcode, str(errcode), transient)


# -1 system busy, 45009 daily API quota, 45047 customer-service quota for this interaction, and a token
# that expired between our check and WeChat's.
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45047}) | TOKEN_ERRCODES


class _MemoryTokenStorage:
    """wechatpy's MemoryStorage ignores TTLs; this one honours them, for single-process use."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            value, expires = self._data.get(key, (default, None))
            if expires is not None and time.monotonic() >= expires:
                del self._data[key]
                return default
            return value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is not None:
            with self._lock:
                self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class CareLoopWeChatClient(WeChatClient):  # type: ignore[misc]  # wechatpy ships no types
    """A WeChatClient with a configurable API root that trusts a token for as long as it is stored."""

    def __init__(self, appid: str, secret: str, *, api_root: str, session: Any, timeout: float) -> None:
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.api_root = api_root.rstrip("/")
        self.API_BASE_URL = f"{self.api_root}/cgi-bin/"

    @property
    def access_token(self) -> str:
        # The stored TTL is the only clock: a token another worker fetched is good until the store forgets it.
        token = self.session.get(self.access_token_key)
        if not token:
            self.fetch_access_token()
            token = self.session.get(self.access_token_key)
        return str(token)

    def fetch_access_token(self) -> dict[str, Any]:
        res = self._http.get(
            f"{self.api_root}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            timeout=self.timeout,
        )
        if res.status_code >= 400:
            raise WeChatClientException(None, None, client=self, request=res.request, response=res)
        result: dict[str, Any] = res.json()
        if result.get("errcode", 0) != 0:
            raise WeChatClientException(
                result["errcode"], result.get("errmsg"), client=self, request=res.request, response=res
            )
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(
            self.access_token_key, result["access_token"], max(expires_in - TOKEN_MARGIN_SECONDS, 60)
        )
        self.expires_at = int(time.time()) + expires_in
        return result


def make_client(
    app_id: str,
    secret: str,
    *,
    api_root: str = "https://api.weixin.qq.com",
    redis_url: str | None,
    timeout: float,
    redis_prefix: str = "careloop:wechat",
) -> CareLoopWeChatClient:
    """A client for one official account; the token is shared through Redis when `redis_url` is set."""
    if redis_url:
        conn = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        session: Any = RedisStorage(conn, prefix=redis_prefix)
    else:
        session = _MemoryTokenStorage()
    return CareLoopWeChatClient(app_id, secret, api_root=api_root, session=session, timeout=timeout)


def invalidate_token(client: Any, exc: WeChatClientException | None = None) -> None:
    """Forget the cached token, unless another worker already replaced the one that failed."""
    key = client.access_token_key
    url = getattr(getattr(exc, "request", None), "url", None)
    failed = parse_qs(urlsplit(url).query).get("access_token", [None])[0] if url else None
    if failed is None or client.session.get(key) == failed:
        client.session.delete(key)


def call(client: Any, fn: Callable[[], T]) -> T:
    """Run one API call; on a token error drop the cached token and try exactly once more."""
    for attempt in (1, 2):
        try:
            return fn()
        except WeChatClientException as exc:
            if exc.errcode is None or int(exc.errcode) not in TOKEN_ERRCODES:
                raise
            invalidate_token(client, exc)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _api_error(exc: BaseException) -> WeChatApiError:
    fault = fault_of(exc)
    if fault is None:
        raise exc
    return WeChatApiError(fault.reason, code=fault.code, transient=fault.transient)


def create_qr_code(client: Any, scene: str, *, expire_seconds: int | None) -> str:
    """A QR code carrying `scene` (returned in FOLLOWED/SCANNED); permanent when `expire_seconds` is None.

    Returns the showqrcode URL of the ticket (the image patients scan).
    """
    if not 1 <= len(scene) <= 64:
        raise ValueError("a WeChat QR scene is 1 to 64 characters")
    data: dict[str, Any] = {"action_info": {"scene": {"scene_str": scene}}}
    if expire_seconds is None:
        data["action_name"] = "QR_LIMIT_STR_SCENE"
    elif 1 <= expire_seconds <= MAX_QR_EXPIRE_SECONDS:
        data.update(action_name="QR_STR_SCENE", expire_seconds=expire_seconds)
    else:
        raise ValueError(f"expire_seconds must be 1..{MAX_QR_EXPIRE_SECONDS}")
    try:
        result = call(client, lambda: client.qrcode.create(data))
    except Exception as exc:
        raise _api_error(exc) from exc
    return str(client.qrcode.get_url(result["ticket"]))


def fetch_media(client: Any, media_id: str) -> tuple[bytes, str]:
    """Download a temporary media file (a patient's image or voice note): its bytes and MIME type."""
    try:
        res = call(client, lambda: client.media.download(media_id))
    except Exception as exc:
        raise _api_error(exc) from exc
    if isinstance(res, dict):  # video media answers with a JSON {"video_url": ...} instead of bytes
        raise WeChatApiError(f"media {media_id} is not downloadable bytes", code="not_bytes", transient=False)
    mime = (res.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()
    return bytes(res.content), mime


class _OAuth(WeChatOAuth):  # type: ignore[misc]  # wechatpy ships no types
    """WeChatOAuth with a configurable API root and a timeout on every request."""

    def __init__(self, app_id: str, secret: str, *, api_root: str, timeout: float, **kw: Any) -> None:
        super().__init__(app_id, secret, **kw)
        self.API_BASE_URL = f"{api_root.rstrip('/')}/"
        self._timeout = timeout

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return super()._request(method, url_or_endpoint, **kwargs)


def oauth_authorize_url(app_id: str, redirect_uri: str, state: str) -> str:
    """Where to send a patient's WeChat browser to learn their openid silently (scope snsapi_base)."""
    if not _STATE.match(state):
        raise ValueError("WeChat OAuth state is up to 128 characters of a-zA-Z0-9")
    oauth = WeChatOAuth(app_id, "", redirect_uri, scope="snsapi_base", state=state)
    return str(oauth.authorize_url)


def oauth_openid(app_id: str, secret: str, code: str, *, api_root: str, timeout: float) -> str:
    """Exchange the `code` WeChat appended to the redirect for the patient's openid."""
    oauth = _OAuth(app_id, secret, api_root=api_root, timeout=timeout, redirect_uri="", scope="snsapi_base")
    try:
        result = oauth.fetch_access_token(code)
    except (WeChatClientException, requests.RequestException) as exc:
        raise _api_error(exc) from exc
    except (KeyError, ValueError) as exc:
        raise WeChatApiError(
            f"wechat oauth answer malformed: {exc}", code="malformed", transient=True
        ) from exc
    return str(result["openid"])
