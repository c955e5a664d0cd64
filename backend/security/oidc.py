"""OpenID Connect client for staff single sign-on: discovery, the authorization-code request with PKCE,
state and nonce, the token exchange, and the ID token's checks (signature against the provider's JWKS,
issuer, audience, expiry, nonce). It knows nothing of CareLoop's accounts: backend/security/sso.py
turns verified claims into a session.

Built on httpx and PyJWT (both already dependencies; the FHIR API verifies its clients' JWTs with PyJWT)
rather than a second JOSE library. Any refusal is an `SsoRefused` with a closed `SsoReason`, raised
before anything is stored."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import jwt

# Asymmetric algorithms only: "none" and the HMAC family (keyed with the client secret) are never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY_SECONDS = 60  # clock skew between the provider and us
DISCOVERY_TTL_SECONDS = 3600


class SsoReason(StrEnum):
    """Why a single sign-on was refused (the audit row keeps it; the page says it in words)."""

    NOT_CONFIGURED = "not_configured"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    PROVIDER_ERROR = "provider_error"  # the provider answered the callback with an error
    STATE_MISMATCH = "state_mismatch"  # no pending sign-in in this browser, or another one's answer
    TOKEN_EXCHANGE_FAILED = "token_exchange_failed"  # noqa: S105  (a reason code)
    BAD_SIGNATURE = "bad_signature"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NONCE_MISMATCH = "nonce_mismatch"
    INVALID_TOKEN = "invalid_token"  # noqa: S105  malformed, or a required claim missing
    NO_USERNAME = "no_username"
    UNKNOWN_USER = "unknown_user"
    ACCOUNT_CREATED_DISABLED = "account_created_disabled"
    ACCOUNT_DISABLED = "account_disabled"
    NO_ROLE = "no_role"  # none of the user's groups maps to a CareLoop role
    SECOND_FACTOR_MISSING = "second_factor_missing"  # the role needs one; neither the provider nor we had it


class SsoRefused(Exception):
    def __init__(self, reason: SsoReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail  # for the audit row; never shown to the user, never a token


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    redirect_uri: str
    timeout: float


@dataclass(frozen=True)
class Pending:
    """What this browser's sign-in must find again at the callback (kept in a signed cookie)."""

    state: str
    nonce: str
    verifier: str  # the PKCE code verifier; only its S256 hash went to the provider


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


_lock = threading.Lock()
_metadata: dict[str, tuple[float, Metadata]] = {}
_keys: dict[str, jwt.PyJWKSet] = {}


def clear_caches() -> None:
    with _lock:
        _metadata.clear()
        _keys.clear()


def _client(config: ProviderConfig) -> httpx.Client:
    return httpx.Client(timeout=config.timeout, follow_redirects=False)


def _get_json(config: ProviderConfig, url: str) -> dict[str, Any]:
    try:
        with _client(config) as http:
            response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, type(exc).__name__) from exc
    if response.status_code != 200:
        raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, f"{url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, f"{url} is not JSON") from exc
    if not isinstance(body, dict):
        raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, f"{url} is not a JSON object")
    return body


def metadata(config: ProviderConfig) -> Metadata:
    """The provider's discovery document, read at most hourly. Its issuer must be the configured one
    (OpenID Connect Discovery 1.0, section 4.3): a document served for another issuer is refused."""
    now = time.monotonic()
    with _lock:
        cached = _metadata.get(config.issuer)
    if cached is not None and now - cached[0] < DISCOVERY_TTL_SECONDS:
        return cached[1]
    doc = _get_json(config, config.issuer.rstrip("/") + "/.well-known/openid-configuration")
    if doc.get("issuer") != config.issuer:
        raise SsoRefused(SsoReason.WRONG_ISSUER, "discovery names another issuer")
    try:
        offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        found = Metadata(
            issuer=str(doc["issuer"]),
            authorization_endpoint=str(doc["authorization_endpoint"]),
            token_endpoint=str(doc["token_endpoint"]),
            jwks_uri=str(doc["jwks_uri"]),
            algorithms=tuple(a for a in offered if a in ALGORITHMS) or ("RS256",),
        )
    except KeyError as exc:
        raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, f"discovery lacks {exc.args[0]}") from exc
    with _lock:
        _metadata[config.issuer] = (now, found)
    return found


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin(config: ProviderConfig) -> tuple[str, Pending]:
    """The provider's authorization URL to send the browser to, and what the callback must match."""
    found = metadata(config)
    pending = Pending(
        state=secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24), verifier=secrets.token_urlsafe(48)
    )
    scopes = ["openid", *(s for s in config.scopes if s != "openid")]
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": config.redirect_uri,
            "scope": " ".join(scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": _challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in found.authorization_endpoint else "?"
    return f"{found.authorization_endpoint}{separator}{query}", pending


def _exchange(config: ProviderConfig, found: Metadata, code: str, pending: Pending) -> str:
    """The ID token for the authorization code (client_secret_basic when there is a secret, else a
    public client identified by client_id; PKCE's verifier either way)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": config.redirect_uri,
        "code_verifier": pending.verifier,
    }
    headers = {"Accept": "application/json"}
    if config.client_secret:
        # RFC 6749 section 2.3.1: id and secret are form-urlencoded before going into Basic
        pair = f"{quote_plus(config.client_id)}:{quote_plus(config.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    else:
        form["client_id"] = config.client_id
    try:
        with _client(config) as http:
            response = http.post(found.token_endpoint, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, type(exc).__name__) from exc
    if response.status_code != 200:
        error = ""
        with contextlib.suppress(ValueError, AttributeError):
            error = str(response.json().get("error", ""))[:64]
        raise SsoRefused(SsoReason.TOKEN_EXCHANGE_FAILED, f"{response.status_code} {error}".strip())
    try:
        token = response.json().get("id_token")
    except (ValueError, AttributeError) as exc:
        raise SsoRefused(SsoReason.TOKEN_EXCHANGE_FAILED, "token response is not a JSON object") from exc
    if not isinstance(token, str) or not token:
        raise SsoRefused(SsoReason.TOKEN_EXCHANGE_FAILED, "no id_token")
    return token


def _key_for(config: ProviderConfig, found: Metadata, kid: str | None) -> jwt.PyJWK:
    """The signing key named by `kid` (or the only key when the token names none); the JWKS is read
    again once when no key fits (the provider rotated its keys)."""
    for attempt in (0, 1):
        with _lock:
            keyset = _keys.get(found.jwks_uri)
        if keyset is None or attempt:
            try:
                keyset = jwt.PyJWKSet.from_dict(_get_json(config, found.jwks_uri))
            except jwt.PyJWKSetError as exc:
                raise SsoRefused(SsoReason.PROVIDER_UNREACHABLE, "unusable JWKS") from exc
            with _lock:
                _keys[found.jwks_uri] = keyset
        candidates = [k for k in keyset.keys if kid is None or k.key_id == kid]
        if len(candidates) == 1:
            return candidates[0]
    raise SsoRefused(SsoReason.BAD_SIGNATURE, "no single key of the provider's fits the token")


def verify_id_token(config: ProviderConfig, found: Metadata, token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, times and nonce all hold."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise SsoRefused(SsoReason.INVALID_TOKEN, "unreadable header") from exc
    if header.get("alg") not in found.algorithms:
        raise SsoRefused(SsoReason.BAD_SIGNATURE, f"algorithm {str(header.get('alg'))[:16]!r} not accepted")
    kid = header.get("kid")
    key = _key_for(config, found, kid if isinstance(kid, str) else None)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=list(found.algorithms),
            audience=config.client_id,
            issuer=config.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise SsoRefused(SsoReason.BAD_SIGNATURE) from exc
    except jwt.ExpiredSignatureError as exc:
        raise SsoRefused(SsoReason.EXPIRED) from exc
    except jwt.InvalidAudienceError as exc:
        raise SsoRefused(SsoReason.WRONG_AUDIENCE) from exc
    except jwt.InvalidIssuerError as exc:
        raise SsoRefused(SsoReason.WRONG_ISSUER) from exc
    except jwt.InvalidTokenError as exc:
        raise SsoRefused(SsoReason.INVALID_TOKEN, type(exc).__name__) from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != config.client_id:
        raise SsoRefused(SsoReason.WRONG_AUDIENCE, "several audiences and azp is not ours")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
        raise SsoRefused(SsoReason.NONCE_MISMATCH)
    return claims


def finish(config: ProviderConfig, *, code: str, pending: Pending) -> dict[str, Any]:
    """Exchange the callback's code and return the verified ID token claims."""
    found = metadata(config)
    return verify_id_token(config, found, _exchange(config, found, code, pending), pending.nonce)


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# RFC 8176's authentication method references by the kind of factor each is: two kinds make two factors.
_FACTOR_KIND = {
    "pwd": "know",
    "pin": "know",
    "kba": "know",
    "otp": "have",
    "sms": "have",
    "tel": "have",
    "hwk": "have",
    "swk": "have",
    "sc": "have",
    "pop": "have",
    "fpt": "are",
    "face": "are",
    "iris": "are",
    "retina": "are",
    "vbm": "are",
}


def shows_second_factor(claims: dict[str, Any], acr_values: list[str]) -> bool:
    """Whether the ID token says the user gave more than one factor: `amr` holds `mfa`, or methods of two
    kinds (a password and a one-time code, say), or `acr` is one of the levels the hospital's provider
    reaches only with a second factor. A provider that says nothing shows nothing."""
    amr = claims.get("amr")
    methods = {m for m in amr if isinstance(m, str)} if isinstance(amr, list) else set()
    if "mfa" in methods or len({_FACTOR_KIND[m] for m in methods if m in _FACTOR_KIND}) >= 2:
        return True
    acr = claims.get("acr")
    return isinstance(acr, str) and acr in acr_values
