"""A local OpenID Connect provider on 127.0.0.1 that plays the documented endpoints (discovery,
authorize, token, JWKS) with a real RS256 key, and checks what the client sends: the registered redirect
URI, client authentication, and the PKCE verifier against the challenge. A test chooses the user's claims
and how the next ID token goes wrong (`tamper`)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "careloop"
CLIENT_SECRET = "s3cret with spaces & symbols"


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    claims: dict[str, Any]


@dataclass
class FakeProvider:
    """The provider's state: its key, the signed-in user's claims, codes issued, and what was asked."""

    claims: dict[str, Any] = field(default_factory=dict)
    tamper: str | None = None  # "forged", "audience", "nonce", "expired", "issuer" or None
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    kid: str = "key-1"
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def issuer(self) -> str:
        return self.url

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "sub": "sub-" + str(grant.claims.get("preferred_username", "x")),
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **grant.claims,
        }
        key = self.key
        if self.tamper == "forged":
            key = rsa.generate_private_key(65537, 2048)  # same kid, another key: the signature fails
        elif self.tamper == "audience":
            claims["aud"] = "another-app"
        elif self.tamper == "nonce":
            claims["nonce"] = "not-the-one-sent"
        elif self.tamper == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.tamper == "issuer":
            claims["iss"] = "https://evil.example"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        provider = self.server.provider
        parts = urlsplit(self.path)
        if parts.path == "/.well-known/openid-configuration":
            self._json(
                {
                    "issuer": provider.issuer,
                    "authorization_endpoint": provider.url + "/authorize",
                    "token_endpoint": provider.url + "/token",
                    "jwks_uri": provider.url + "/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                }
            )
        elif parts.path == "/jwks":
            self._json({"keys": [_jwk(provider.key, provider.kid)]})
        elif parts.path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            problems = [
                name
                for name, ok in (
                    ("response_type", query.get("response_type") == "code"),
                    ("client_id", query.get("client_id") == CLIENT_ID),
                    ("scope", "openid" in query.get("scope", "").split()),
                    ("code_challenge_method", query.get("code_challenge_method") == "S256"),
                    ("code_challenge", len(query.get("code_challenge", "")) >= 43),
                    ("nonce", bool(query.get("nonce"))),
                    ("state", bool(query.get("state"))),
                )
                if not ok
            ]
            if problems:
                provider.refusals.append("authorize:" + ",".join(problems))
                self._json({"error": "invalid_request", "fields": problems}, 400)
                return
            code = secrets.token_urlsafe(16)
            provider.grants[code] = Grant(
                query["client_id"],
                query["redirect_uri"],
                query["nonce"],
                query["code_challenge"],
                dict(provider.claims),
            )
            # the user is signed in at the provider already: straight back with the code
            self.send_response(302)
            self.send_header(
                "Location", query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
            )
            self.end_headers()
        else:
            self._json({"error": "not_found"}, 404)

    def do_POST(self) -> None:
        provider = self.server.provider
        if urlsplit(self.path).path != "/token":
            self._json({"error": "not_found"}, 404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        provider.token_requests.append(form)
        expected = base64.b64encode(
            f"{urlencode({'': CLIENT_ID})[1:]}:{urlencode({'': CLIENT_SECRET})[1:]}".encode()
        ).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            provider.refusals.append("token:client_auth")
            self._json({"error": "invalid_client"}, 401)
            return
        grant = provider.grants.pop(form.get("code", ""), None)  # a code is good once
        if grant is None or form.get("grant_type") != "authorization_code":
            provider.refusals.append("token:code")
            self._json({"error": "invalid_grant"}, 400)
            return
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
            provider.refusals.append("token:pkce_or_redirect")
            self._json({"error": "invalid_grant"}, 400)
            return
        self._json(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": provider.id_token(grant),
            }
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: FakeProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider


def start() -> tuple[FakeProvider, _Server]:
    provider = FakeProvider()
    server = _Server(provider)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return provider, server
