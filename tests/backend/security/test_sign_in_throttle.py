"""Sign-in throttling: usernames and addresses counted apart, waits that double instead of a lock, the
client's address from X-Forwarded-For only behind a trusted proxy, and races that cannot beat the counter
or spend one TOTP code twice (threads against the real app, on both databases)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, LoginAttempt, Role
from backend.models.base import utcnow
from backend.security.client_address import client_address
from backend.web.app import create_app
from tests import factories
from tests.backend.security.test_staff_auth import _csrf
from tests.conftest import reset_caches
from tests.factories import PASSWORD

PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CARELOOP_TRUSTED_PROXIES", '["10.0.0.0/24"]')
    reset_caches()
    yield


def _client(peer: str = PROXY) -> TestClient:
    return TestClient(create_app(), base_url="http://127.0.0.1:8000", client=(peer, 40000))


def _try(
    client: TestClient, username: str, password: str = PASSWORD, code: str = "", via: str | None = None
) -> int:
    headers = {"X-Forwarded-For": via} if via else {}
    token = _csrf(client.get("/staff/login").text)
    response = client.post(
        "/staff/login",
        data={"username": username, "password": password, "totp_code": code, "csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )
    return response.status_code


def _count(db: Session, action: str) -> int:
    db.expire_all()
    return int(db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == action)) or 0)


def _age_attempts(db: Session, seconds: int) -> None:
    db.expire_all()
    for attempt in db.scalars(sa.select(LoginAttempt)):
        attempt.at -= timedelta(seconds=seconds)
    db.commit()


def test_the_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() -> None:
    trusted = ("10.0.0.0/24",)
    assert client_address("10.0.0.2", "203.0.113.7", trusted) == "203.0.113.7"
    assert client_address("198.51.100.1", "203.0.113.7", trusted) == "198.51.100.1"  # not our proxy
    # a client's own X-Forwarded-For is kept to the left of what our proxy appended
    assert client_address("10.0.0.2", "1.2.3.4, 203.0.113.7", trusted) == "203.0.113.7"
    assert client_address("10.0.0.2", "203.0.113.7, 10.0.0.3", trusted) == "203.0.113.7"
    assert client_address("10.0.0.2", "not-an-address", trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", None, trusted) == "10.0.0.2"


def test_five_typos_behind_the_proxy_slow_down_only_that_person(behind_proxy: None, db: Session) -> None:
    factories.staff(db, username="nurse1")
    factories.staff(db, username="nurse2")
    db.commit()
    with _client() as client:
        for _ in range(5):
            assert _try(client, "nurse1", "typo", via="203.0.113.7") == 401
        assert _try(client, "nurse1", via="203.0.113.7") == 401  # waiting now
        client.cookies.clear()
        assert _try(client, "nurse2", via="203.0.113.8") == 303  # a colleague behind the same proxy
    db.expire_all()
    assert set(db.scalars(sa.select(LoginAttempt.ip))) == {"203.0.113.7", "203.0.113.8"}


def test_a_shared_address_is_not_locked_by_one_persons_typos(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    factories.staff(db, username="nurse2")
    db.commit()
    for _ in range(6):
        _try(client, "nurse1", "typo")
    client.cookies.clear()
    assert _try(client, "nurse2") == 303


def test_an_address_trying_many_usernames_waits(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    for n in range(20):
        assert _try(client, f"guess{n}", "typo") == 401
    assert _try(client, "nurse1") == 401
    assert _count(db, "staff.sign_in_throttled") == 1


def test_the_wait_doubles_with_each_failure_instead_of_a_fifteen_minute_lock(
    client: TestClient, db: Session
) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    for _ in range(5):
        _try(client, "nurse1", "typo")
    assert _try(client, "nurse1") == 401
    _age_attempts(db, 31)  # the first wait is 30 s
    assert _try(client, "nurse1", "typo") == 401  # checked, and failed: six failures now
    _age_attempts(db, 31)
    assert _try(client, "nurse1") == 401  # the wait is 60 s now
    _age_attempts(db, 30)
    assert _try(client, "nurse1") == 303


def test_nobody_can_keep_admin_locked_out_of_her_own_browser(db: Session, database_url: str) -> None:
    admin = factories.staff(db, username="admin", role=Role.ADMIN, totp=True)
    db.commit()
    totp = pyotp.TOTP(admin.totp_secret or "")
    with _client("198.51.100.9") as own, _client("203.0.113.66") as attacker:
        assert _try(own, "admin", code=totp.now()) == 303  # she has signed in on this browser before
        own.cookies.delete("cl_session")
        for _ in range(8):
            assert _try(attacker, "admin", "guess") == 401
        assert _count(db, "staff.sign_in_throttled") == 3  # any new browser waits for "admin" now
        code = totp.at(utcnow() + timedelta(seconds=30))  # her first code is spent; the next step's
        assert _try(own, "admin", code=code) == 303


def _race(n: int, attempt: Any) -> list[int]:
    """Run `attempt(client)` in n threads at once, each with its own client of one shared app."""
    app = create_app()
    clients = [TestClient(app, base_url="http://127.0.0.1:8000") for _ in range(n)]
    tokens = [_csrf(c.get("/staff/login").text) for c in clients]
    barrier = threading.Barrier(n)
    results: list[int] = [0] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = attempt(clients[i], tokens[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for c in clients:
        c.close()
    return results


def _post(client: TestClient, token: str, **form: str) -> int:
    response = client.post("/staff/login", data={"csrf_token": token, **form}, follow_redirects=False)
    return response.status_code


def test_concurrent_sign_ins_with_one_totp_code_succeed_once(db: Session) -> None:
    admin = factories.staff(db, username="boss", role=Role.ADMIN, totp=True)
    db.commit()
    code = pyotp.TOTP(admin.totp_secret or "").now()
    results = _race(4, lambda c, t: _post(c, t, username="boss", password=PASSWORD, totp_code=code))
    assert sorted(results) == [303, 401, 401, 401]


def test_concurrent_wrong_passwords_are_counted_before_the_next_is_checked(db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    results = _race(30, lambda c, t: _post(c, t, username="nurse1", password="guess"))
    assert set(results) == {401}
    assert _count(db, "staff.sign_in_failed") == 5
    assert _count(db, "staff.sign_in_throttled") == 25
