"""Body limits per route class, counted as the bytes arrive: a chunked 100 MB body is refused with 413
after at most the limit and one chunk has been read, on every route class a stranger can reach."""

from __future__ import annotations

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.types import Message

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.web import body_limit
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in

CHUNK = 64 * 1024
HUNDRED_MB = 100 * 1024 * 1024


class Flood:
    """A chunked body of about 100 MB, fed to the app's ASGI interface one chunk at a time (the test
    client reads a streamed body whole before the app sees it), counting what the server asked for."""

    def __init__(self, head: bytes = b"a=") -> None:
        self.head = head
        self.sent = 0

    async def receive(self) -> Message:
        if self.sent >= HUNDRED_MB:
            return {"type": "http.request", "body": b"", "more_body": False}
        chunk = (self.head if self.sent == 0 else b"") + b"x" * CHUNK
        self.sent += CHUNK
        return {"type": "http.request", "body": chunk[:CHUNK], "more_body": True}


def _flood(
    client: TestClient, path: str, headers: dict[str, str] | None = None, flood: Flood | None = None
) -> tuple[int, int]:
    """POST the flood to `path` of the client's app (its cookies too); the status and the bytes read."""
    flood = flood or Flood()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    all_headers = {
        "content-type": "application/x-www-form-urlencoded",
        "transfer-encoding": "chunked",
        "accept": "application/json",
        "cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items()),
        **(headers or {}),
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    anyio.run(client.app, scope, flood.receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"]), flood.sent


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/hooks/twilio/messages", body_limit.WEBHOOKS),
        ("/hooks/sms-gateway", body_limit.WEBHOOKS),
        ("/hooks/wechat", body_limit.WEBHOOKS),
        ("/hooks/twilio/voice/answer", body_limit.WEBHOOKS),
        ("/staff/login", body_limit.SIGN_IN),
        ("/wx/bind", body_limit.WECHAT_BINDING),
    ],
)
def test_a_chunked_flood_is_refused_as_soon_as_it_passes_the_limit(
    client: TestClient, path: str, limit: int
) -> None:
    status, sent = _flood(client, path)
    assert status == 413
    assert sent <= limit + CHUNK


def test_patient_form_chat_and_feedback_posts_are_refused_without_a_content_length(
    client: TestClient, db: Session
) -> None:
    person = factories.patient(db)
    db.commit()
    settings = get_settings()
    for kind, path in (
        (LinkKind.CHAT, "/c/{}/messages"),
        (LinkKind.FORM, "/q/{}"),
        (LinkKind.FEEDBACK, "/f/{}"),
    ):
        status, sent = _flood(client, path.format(make_token(settings, kind, person.id)))
        assert status == 413, path
        assert sent <= body_limit.PATIENT_POSTS + CHUNK, path


def test_a_declared_length_over_the_limit_is_refused_before_reading(client: TestClient) -> None:
    status, sent = _flood(client, "/hooks/twilio/messages", {"content-length": str(HUNDRED_MB)})
    assert status == 413 and sent == 0


def test_staff_uploads_have_their_own_larger_limit(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    assert sign_in(client, "nurse1").status_code == 303
    csrf = _csrf(client.get("/staff/patients").text)
    upload_limit = body_limit.limit_for("/staff/cases/1/record", get_settings().max_attachment_bytes)
    assert upload_limit > body_limit.STAFF_FORMS > body_limit.SIGN_IN
    # a file well over the staff form limit still reaches the route (which answers: no such case)
    mid = client.post(
        "/staff/cases/999/record",
        data={"kind": "note", "text": "x", "csrf_token": csrf},
        files={"file": ("scan.pdf", b"%PDF-" + b"0" * (2 * body_limit.STAFF_FORMS), "application/pdf")},
    )
    assert mid.status_code != 413
    multipart = {"content-type": "multipart/form-data; boundary=b0undary"}
    head = b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
    status, sent = _flood(client, "/staff/cases/999/record", multipart, Flood(head))
    assert status == 413 and sent <= upload_limit + CHUNK
    status, sent = _flood(client, "/staff/patients/1/flags")
    assert status == 413 and sent <= body_limit.STAFF_FORMS + CHUNK


def test_small_bodies_pass_untouched(client: TestClient) -> None:
    page = client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={"username": "nobody", "password": "x", "csrf_token": _csrf(page.text)},
    )
    assert response.status_code == 401
