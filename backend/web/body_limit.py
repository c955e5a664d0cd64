"""Request body limits per route class, counted as the bytes arrive (a pure ASGI middleware).

A declared Content-Length over the limit is refused before anything is read; a chunked body (no
Content-Length) is counted chunk by chunk and refused as soon as it passes the limit, so nobody can make
the server hold a 100 MB body in memory before a route gets to check its size."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KB = 1024
# (path prefix, limit in bytes), first match wins. Providers send a few KB; our own pages post small
# forms (the questionnaire page's 500 fields fit in 64 KB); staff uploads carry one evidence file.
WEBHOOKS = 64 * KB
SIGN_IN = 8 * KB
WECHAT_BINDING = 16 * KB
PATIENT_POSTS = 64 * KB
STAFF_FORMS = 1024 * KB  # the flow simulator's page posts its transcript back (up to ~330 K characters)
OTHER = 64 * KB
FHIR = 1024 * KB  # one Patient or Encounter is a few KB; settings.fhir_max_body_bytes overrides
UPLOAD_OVERHEAD = 64 * KB  # the multipart envelope and the form's other fields around the file


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the body passes its limit; FastAPI and Starlette answer it with 413."""

    def __init__(self) -> None:
        super().__init__(413, "body too large")


def limit_for(path: str, upload_bytes: int, fhir_bytes: int = FHIR, import_bytes: int = 0) -> int:
    """The body limit of a request to `path`; `upload_bytes` is the largest staff evidence file,
    `import_bytes` the largest import file."""
    if path.startswith("/fhir/"):
        return fhir_bytes
    if path.startswith("/hooks/"):
        return WEBHOOKS
    if path.startswith("/staff/login"):
        return SIGN_IN
    if path.startswith("/wx/"):
        return WECHAT_BINDING
    if path.startswith(("/c/", "/q/", "/f/", "/s/")):
        return PATIENT_POSTS
    if path.startswith("/staff/cases/") and path.endswith("/record"):
        return upload_bytes + UPLOAD_OVERHEAD
    if path == "/staff/studio/questionnaires/import":  # the import's own setting refuses smaller files
        return upload_bytes + UPLOAD_OVERHEAD
    if path == "/staff/imports" and import_bytes:
        return import_bytes + UPLOAD_OVERHEAD
    if path.startswith("/staff"):
        return STAFF_FORMS
    return OTHER


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, upload_bytes: int, fhir_bytes: int = FHIR, import_bytes: int = 0
    ) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.fhir_bytes = fhir_bytes
        self.import_bytes = import_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(str(scope.get("path", "")), self.upload_bytes, self.fhir_bytes, self.import_bytes)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            # A route that read the body outside FastAPI's parsing (and did not turn the exception
            # into a response itself) still gets its 413.
            if started:
                raise
            await _refuse(scope, send)


async def _refuse(scope: Scope, send: Send) -> None:
    accept = b""
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            accept = value
    if str(scope.get("path", "")).startswith("/fhir/"):  # FHIR clients get an OperationOutcome
        issue = {"severity": "error", "code": "too-long", "diagnostics": "request body too large"}
        outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
        body, kind = json.dumps(outcome).encode(), b"application/fhir+json"
    elif b"application/json" in accept:
        body, kind = json.dumps({"error": "too_large"}).encode(), b"application/json"
    else:
        body, kind = b"Request body too large.", b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
