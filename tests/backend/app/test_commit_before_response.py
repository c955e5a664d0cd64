"""A request's writes are committed before its response starts. A browser follows the sign-in's
redirect at once; had the commit waited until after the reply (FastAPI's default for dependencies
with yield since 0.118), the next page could miss the new session and send the user back to sign in."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import StaffSession
from backend.web.staff import LOGIN_CSRF_COOKIE
from tests import factories
from tests.backend.security.test_staff_auth import _csrf
from tests.backend.voice.live import run_in_own_loop
from tests.factories import PASSWORD


def _asgi_post(app: Any, path: str, form: dict[str, str], cookie: str, on_start: Any) -> list[int]:
    """POST a form straight through the ASGI interface; `on_start` runs when the response starts."""
    body = urlencode(form).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"cookie", cookie.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.sleep(3600)  # no disconnect while the app works
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
            on_start()

    run_in_own_loop(app(scope, receive, send))
    return statuses


def test_a_sign_in_is_committed_before_its_redirect_starts(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    token = _csrf(client.get("/staff/login").text)
    sessions_at_start: list[int] = []

    def count_sessions() -> None:  # another connection: sees only what the app committed
        db.rollback()
        sessions_at_start.append(db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) or 0)

    statuses = _asgi_post(
        client.app,
        "/staff/login",
        {"username": "nurse1", "password": PASSWORD, "totp_code": "", "csrf_token": token},
        f"{LOGIN_CSRF_COOKIE}={token}",
        count_sessions,
    )
    assert statuses == [303]
    assert sessions_at_start == [1]  # the redirect's target will find the new session
