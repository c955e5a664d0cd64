"""FHIR API clients: registration, the SMART Backend Services token exchange (OAuth2 client credentials
with an RFC 7523 `private_key_jwt` assertion), and who is calling, from a bearer token or an API key.

PyJWT verifies the signatures (RS384/ES384 against the client's registered JWKS); nothing here does its
own cryptography. Tokens and API keys are random strings of which only a SHA-256 is stored."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.fhir.outcome import FhirError, IssueType
from backend.fhir.scopes import BadScope, Scope, grantable, parse_scope, parse_scopes
from backend.models import Department, FhirAccessToken, FhirClient, FhirUsedAssertion
from backend.services import audit

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")  # what SMART Backend Services requires servers to support
MAX_ASSERTION_SECONDS = 300  # SMART: a client assertion's exp is at most five minutes ahead
CLOCK_SKEW_SECONDS = 60
API_KEY_PREFIX = "clk_"


class BadRegistration(ValueError):
    """A client that cannot be registered as given (bad JWKS, private key material, unknown scope)."""


class OAuthError(Exception):
    """A token request refused, answered as RFC 6749 asks: {"error", "error_description"}."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class Caller:
    """The client behind one request, with what its token or key allows."""

    client_id: int
    name: str
    scopes: list[Scope]
    department_id: int | None


@dataclass(frozen=True, slots=True)
class Registered:
    client: FhirClient
    api_key: str | None  # shown once; only its hash is stored


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_jwks(jwks: Any) -> dict[str, Any]:
    """A JWKS of public RS384/ES384 signing keys, each loadable; BadRegistration says which key is wrong."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise BadRegistration('the JWKS must be a JSON object {"keys": [...]} with at least one key')
    for number, key in enumerate(jwks["keys"], 1):
        if not isinstance(key, dict):
            raise BadRegistration(f"key {number}: not a JSON object")
        if any(part in key for part in ("d", "p", "q")):
            raise BadRegistration(f"key {number}: holds private key material; register the public key only")
        if key.get("kty") not in ("RSA", "EC"):
            raise BadRegistration(f"key {number}: kty must be RSA or EC")
        if key.get("alg") not in (None, *ALGORITHMS):
            raise BadRegistration(f"key {number}: alg {key.get('alg')!r}; use RS384 or ES384")
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError) as exc:
            raise BadRegistration(f"key {number}: {exc}") from None
    return {"keys": jwks["keys"]}


def do_add_client(
    session: Session,
    *,
    name: str,
    scopes: list[str],
    jwks: Any = None,
    api_key: bool = False,
    department: Department | None = None,
) -> Registered:
    """Register a system; it authenticates with its keys (JWKS), an API key, or both."""
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() for ch in name):
        raise BadRegistration("the client name must be 1–100 characters without spaces (it is the client_id)")
    if jwks is None and not api_key:
        raise BadRegistration("give the client a JWKS (SMART Backend Services), an API key, or both")
    try:
        parsed = [str(parse_scope(scope)) for scope in scopes]
    except BadScope as exc:
        raise BadRegistration(str(exc)) from None
    if not parsed:
        raise BadRegistration("give at least one scope, e.g. system/Patient.cruds")
    if session.scalar(sa.select(FhirClient.id).where(FhirClient.name == name)) is not None:
        raise BadRegistration(f"a client named {name!r} exists already")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32) if api_key else None
    client = FhirClient(
        name=name,
        jwks=check_jwks(jwks) if jwks is not None else None,
        api_key_hash=_digest(key) if key else None,
        scopes=parsed,
        department_id=department.id if department else None,
    )
    session.add(client)
    session.flush()
    audit.record(
        session, "fhir.client_added", subject=("fhir_client", client.id), client=name, scopes=parsed,
        department_id=client.department_id, jwks=jwks is not None, api_key=api_key,
    )  # fmt: skip
    return Registered(client, key)


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return jwt.get_unverified_header(assertion), jwt.decode(
            assertion, options={"verify_signature": False}
        )
    except jwt.PyJWTError:
        raise OAuthError("invalid_client", "client_assertion is not a JWT", status=401) from None


def _verify(
    assertion: str, client: FhirClient, header: dict[str, Any], audiences: list[str]
) -> dict[str, Any]:
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise OAuthError(
            "invalid_client", f"alg {algorithm!r}: assertions are signed RS384 or ES384", status=401
        )
    keys = (client.jwks or {}).get("keys", [])
    kid = header.get("kid")
    candidates = [key for key in keys if kid is None or key.get("kid") == kid]
    if not candidates:
        raise OAuthError("invalid_client", f"no registered key with kid {kid!r}", status=401)
    last: Exception | None = None
    for key in candidates:
        try:
            return jwt.decode(
                assertion,
                jwt.PyJWK(key).key,
                algorithms=[algorithm],
                audience=audiences,
                issuer=client.name,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidSignatureError as exc:
            last = exc  # another key with the same kid (or none given) may match
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_client", "the client assertion has expired", status=401) from None
        except (jwt.PyJWTError, jwt.PyJWKError, ValueError) as exc:
            raise OAuthError("invalid_client", f"client assertion refused: {exc}", status=401) from None
    raise OAuthError("invalid_client", f"client assertion refused: {last}", status=401)


def _use_once(session: Session, client: FhirClient, jti: str, expires: datetime, now: datetime) -> None:
    """Refuse a `jti` seen before from this client; forget those that could no longer be replayed anyway."""
    session.execute(sa.delete(FhirUsedAssertion).where(FhirUsedAssertion.expires_at < now))
    try:
        with session.begin_nested():
            session.add(FhirUsedAssertion(client_id=client.id, jti=jti[:255], expires_at=expires))
    except IntegrityError:
        raise OAuthError(
            "invalid_client", "this client assertion (jti) was used already", status=401
        ) from None


def do_exchange(
    session: Session,
    form: Mapping[str, str],
    *,
    audiences: list[str],
    lifetime_seconds: int,
    now: datetime,
) -> IssuedToken:
    """An access token for a valid client assertion (SMART Backend Services); OAuthError otherwise."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion") or ""
    if not assertion:
        raise OAuthError("invalid_request", "client_assertion is missing")
    header, claims = _unverified(assertion)
    issuer = claims.get("iss")
    client = session.scalars(sa.select(FhirClient).where(FhirClient.name == str(issuer))).first()
    if client is None or not client.active or not client.jwks:
        raise OAuthError("invalid_client", f"no active client {issuer!r} with registered keys", status=401)
    try:
        claims = _verify(assertion, client, header, audiences)
        if claims.get("sub") != client.name:
            raise OAuthError("invalid_client", "sub must equal iss (the client_id)", status=401)
        if float(claims["exp"]) - now.timestamp() > MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
            raise OAuthError("invalid_client", "exp is more than 5 minutes ahead", status=401)
        expires = datetime.fromtimestamp(float(claims["exp"]), now.tzinfo) + timedelta(
            seconds=CLOCK_SKEW_SECONDS
        )
        _use_once(session, client, str(claims["jti"]), expires, now)
        registered = [parse_scope(scope) for scope in client.scopes]
        try:
            requested = parse_scopes(form["scope"]) if form.get("scope") else registered
        except BadScope as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        granted = grantable(requested, registered)
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is granted to this client")
    except OAuthError as refused:
        audit.record(
            session, "fhir.token_refused", subject=("fhir_client", client.id), client=client.name,
            error=refused.error, reason=refused.description,
        )  # fmt: skip
        raise
    token = secrets.token_urlsafe(32)
    scope_text = " ".join(str(scope) for scope in granted)
    session.add(
        FhirAccessToken(
            token_hash=_digest(token),
            client_id=client.id,
            scopes=[str(scope) for scope in granted],
            expires_at=now + timedelta(seconds=lifetime_seconds),
            created_at=now,
        )
    )
    session.execute(sa.delete(FhirAccessToken).where(FhirAccessToken.expires_at < now))
    audit.record(
        session, "fhir.token_issued", subject=("fhir_client", client.id), client=client.name, scope=scope_text
    )
    return IssuedToken(token, lifetime_seconds, scope_text)


def _unauthorized(diagnostics: str) -> FhirError:
    return FhirError(401, IssueType.LOGIN, diagnostics)


def authenticate(
    session: Session, *, authorization: str | None, api_key: str | None, now: datetime
) -> Caller:
    """The calling client, from `Authorization: Bearer <token>` or `X-API-Key`; 401 otherwise."""
    if authorization:
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization must be 'Bearer <access token>'")
        found = session.execute(
            sa.select(FhirAccessToken, FhirClient)
            .join(FhirClient, FhirClient.id == FhirAccessToken.client_id)
            .where(FhirAccessToken.token_hash == _digest(token.strip()))
        ).first()
        if found is None:
            raise _unauthorized("unknown access token")
        issued, client = found[0], found[1]
        if issued.expires_at <= now:
            raise _unauthorized("the access token has expired; ask the token endpoint for a new one")
        if not client.active:
            raise _unauthorized("the client is disabled")
        return Caller(client.id, client.name, [parse_scope(s) for s in issued.scopes], client.department_id)
    if api_key:
        keyed = session.scalars(
            sa.select(FhirClient).where(FhirClient.api_key_hash == _digest(api_key.strip()))
        ).first()
        if keyed is None or not keyed.active:
            raise _unauthorized("unknown or disabled API key")
        return Caller(keyed.id, keyed.name, [parse_scope(s) for s in keyed.scopes], keyed.department_id)
    raise _unauthorized("authentication required: a SMART Backend Services access token or an API key")


def jwks_from_text(text: str) -> Any:
    """The JWKS given on the command line or in a file, as JSON; BadRegistration when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRegistration(f"the JWKS is not JSON: {exc}") from None
