"""LDAP sign-in against a real slapd (tests/backend/security/slapd.py) on a loopback port: the directory
checks the password, groups give roles and departments at every sign-in, an empty password never reaches
the directory, unknown users are made just in time or refused, a user out of every mapped group loses
access (and her open sessions), the directory being down is said plainly while the break-glass account
still signs in, administrators still need their own authenticator code, failures are throttled, and
StartTLS is required and checked against the CA given."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import AuditEvent, LoginAttempt, Role, StaffSession, StaffUser
from backend.security.auth import SignInRefused
from backend.security.ldap_directory import DirectoryReason, DirectoryRefused, authenticate, config_from
from backend.security.ldap_sign_in import DirectoryUnavailable, do_ldap_sign_in, uses_directory
from tests import factories
from tests.backend.admin.helpers import csrf
from tests.backend.security import slapd
from tests.conftest import reset_caches
from tests.factories import PASSWORD

pytestmark = [
    pytest.mark.ldap,
    pytest.mark.skipif(not slapd.available(), reason="Debian's slapd is not installed (make system-deps)"),
]
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
# written as an administrator might paste them from Active Directory: case and spaces differ from the
# directory's own spelling, and still match
ROLES = {
    "CN=Nurses, OU=Groups, DC=hospital, DC=test": "nurse",
    f"cn=managers,{slapd.GROUP_BASE}": "manager",
    f"cn=doctors,{slapd.GROUP_BASE}": "doctor",
    f"cn=it-admins,{slapd.GROUP_BASE}": "admin",
}
DEPARTMENTS = {f"cn=cardiology,{slapd.GROUP_BASE}": "CARD"}


def _configure(monkeypatch: pytest.MonkeyPatch, urls: list[str], **more: str) -> None:
    values = {
        "CARELOOP_LDAP_URLS": json.dumps(urls),
        "CARELOOP_LDAP_START_TLS": "false",  # loopback only; StartTLS has its own test below
        "CARELOOP_LDAP_BIND_DN": slapd.SERVICE_DN,
        "CARELOOP_LDAP_BIND_PASSWORD": slapd.SERVICE_PASSWORD,
        "CARELOOP_LDAP_USER_BASE": slapd.STAFF_BASE,
        "CARELOOP_LDAP_USER_FILTER": "(uid={username})",
        "CARELOOP_LDAP_GROUP_ROLES": json.dumps(ROLES),
        "CARELOOP_LDAP_GROUP_DEPARTMENTS": json.dumps(DEPARTMENTS),
        "CARELOOP_BREAK_GLASS_USERNAMES": '["root"]',
        **more,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    reset_caches()


@pytest.fixture
def directory(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[slapd.Slapd]:
    server = slapd.start(tmp_path)
    _configure(monkeypatch, [server.url])
    yield server
    server.stop()


def _sign_in(db: Session, username: str, password: str, code: str = "", now: datetime = NOW) -> StaffSession:
    new = do_ldap_sign_in(
        db, get_settings(), username=username, password=password, totp_code=code, ip="10.0.0.7", now=now
    )
    db.commit()
    return new.session


def _refused(db: Session, username: str, password: str, code: str = "", now: datetime = NOW) -> str:
    with pytest.raises(SignInRefused) as refused:
        do_ldap_sign_in(
            db, get_settings(), username=username, password=password, totp_code=code, ip="10.0.0.7", now=now
        )
    db.commit()  # as the route does: the failed attempt and its audit row stay
    return str(refused.value)


def _user(db: Session, username: str) -> StaffUser:
    db.expire_all()
    return db.scalars(sa.select(StaffUser).where(StaffUser.username == username)).one()


def _failures(db: Session) -> list[str]:
    rows = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sign_in_failed"))
    return [e.detail["reason"] for e in rows]


def test_the_directory_password_signs_in_and_groups_give_roles_and_departments(
    directory: slapd.Slapd, db: Session
) -> None:
    card = factories.department(db, code="CARD")
    other = factories.department(db, code="ORTH")
    # her local account said doctor in orthopaedics: the directory's groups decide now
    factories.staff(db, username="head.wang", role=Role.DOCTOR, departments=[other])
    db.commit()
    staff_session = _sign_in(db, "Head.Wang", slapd.PASSWORDS["head.wang"])
    user = _user(db, "head.wang")
    assert user.roles == {Role.NURSE, Role.MANAGER}  # in the nurses' and the managers' groups
    assert [d.id for d in user.departments] == [card.id]
    assert staff_session.staff_id == user.id and staff_session.ended_at is None
    attempt = db.scalars(sa.select(LoginAttempt)).one()
    assert (attempt.username, attempt.succeeded) == ("head.wang", True)
    actions = [e.action for e in db.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["staff.role_assign", "staff.departments_synced", "staff.sign_in"]
    signed = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.sign_in")).one()
    assert signed.detail["method"] == "ldap"
    # the same groups again: nothing changes, nothing more is written but the sign-in
    _sign_in(db, "head.wang", slapd.PASSWORDS["head.wang"], now=NOW + timedelta(minutes=1))
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "staff.role_assign")) == 1


def test_a_wrong_password_is_refused_and_counted(directory: slapd.Slapd, db: Session) -> None:
    factories.staff(db, username="nurse.li")
    db.commit()
    assert _refused(db, "nurse.li", "not-her-password") == "bad_password"
    # her old local password is not a way in either: the directory decides
    assert _refused(db, "nurse.li", PASSWORD) == "bad_password"
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) == 0
    assert [a.succeeded for a in db.scalars(sa.select(LoginAttempt))] == [False, False]
    assert _failures(db) == ["bad_password", "bad_password"]
    assert _user(db, "nurse.li").roles == {Role.NURSE}  # nothing synced from a failed try


def test_an_empty_password_is_refused_before_the_directory_is_asked(
    database_url: str, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty password would be an unauthenticated bind, which Active Directory answers with success.
    The "directory" here is a socket that counts connections: it must see none."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    counter = threading.Thread(target=count)
    counter.start()
    try:
        _configure(monkeypatch, [f"ldap://127.0.0.1:{listener.getsockname()[1]}"])
        factories.staff(db, username="nurse.li")
        db.commit()
        assert _refused(db, "nurse.li", "") == "empty_password"
        with pytest.raises(DirectoryRefused) as adapter:
            authenticate(config_from(get_settings()), "nurse.li", "")
        assert adapter.value.reason is DirectoryReason.EMPTY_PASSWORD
    finally:
        stop.set()
        counter.join(timeout=5)
        listener.close()
    assert accepted == []
    assert [a.succeeded for a in db.scalars(sa.select(LoginAttempt))] == [False]


def test_unknown_users_are_refused_or_made_just_in_time(
    directory: slapd.Slapd, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = factories.department(db, code="CARD")
    db.commit()
    assert _refused(db, "nobody", "whatever-it-is") == "unknown_user"  # not in the directory
    # filter syntax is not a username: refused before any search (and escaped in any case)
    assert _refused(db, "*", "whatever-it-is") == "unknown_user"
    assert _refused(db, "nurse.li)(uid=*", "whatever-it-is") == "unknown_user"
    assert _refused(db, "dr.tran", slapd.PASSWORDS["dr.tran"]) == "no_account"  # in it, no account here
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == 0
    monkeypatch.setenv("CARELOOP_LDAP_CREATE_USERS", "true")
    reset_caches()
    assert _refused(db, "dr.tran", "a-wrong-password") == "bad_password"  # no account from a wrong password
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == 0
    _sign_in(db, "dr.tran", slapd.PASSWORDS["dr.tran"])
    made = _user(db, "dr.tran")
    assert (made.display_name, made.roles, made.active) == ("Trần Văn An", {Role.DOCTOR}, True)
    assert [d.id for d in made.departments] == [card.id]
    created = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.create")).one()
    assert created.detail["source"] == "ldap" and created.detail["roles"] == ["doctor"]
    # in the directory but in no mapped group: no account is made
    assert _refused(db, "visitor.x", slapd.PASSWORDS["visitor.x"]) == "no_role"
    assert db.scalar(sa.select(StaffUser.id).where(StaffUser.username == "visitor.x")) is None


def test_leaving_a_group_takes_its_role_and_leaving_all_takes_access(
    directory: slapd.Slapd, db: Session
) -> None:
    factories.department(db, code="CARD")
    factories.staff(db, username="head.wang")
    factories.staff(db, username="nurse.li")
    db.commit()
    _sign_in(db, "head.wang", slapd.PASSWORDS["head.wang"])
    assert _user(db, "head.wang").roles == {Role.NURSE, Role.MANAGER}
    directory.remove_member("managers", "head.wang")
    _sign_in(db, "head.wang", slapd.PASSWORDS["head.wang"], now=NOW + timedelta(minutes=1))
    assert _user(db, "head.wang").roles == {Role.NURSE}
    # nurse.li signs in, then leaves the only group that gave her a role
    open_session = _sign_in(db, "nurse.li", slapd.PASSWORDS["nurse.li"])
    directory.remove_member("nurses", "nurse.li")
    assert _refused(db, "nurse.li", slapd.PASSWORDS["nurse.li"], now=NOW + timedelta(minutes=2)) == "no_role"
    db.expire_all()
    assert db.get(StaffSession, open_session.id).ended_at is not None  # what she had open ends too
    ended = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.ldap_no_role")).one()
    assert ended.detail["sessions_ended"] == 1


def test_administrators_from_the_directory_still_need_their_own_code(
    directory: slapd.Slapd, db: Session
) -> None:
    factories.staff(db, username="root", role=Role.ADMIN, totp=True)  # another admin, so none is "last"
    chen = factories.staff(db, username="it.chen", role=Role.NURSE)
    db.commit()
    # the directory makes her an admin, but she has no authenticator enrolled: refused until she has
    assert _refused(db, "it.chen", slapd.PASSWORDS["it.chen"]) == "second_factor_not_enrolled"
    assert _user(db, "it.chen").roles == {Role.ADMIN}
    secret = pyotp.random_base32()
    chen = _user(db, "it.chen")
    chen.totp_secret = secret
    db.commit()
    later = NOW + timedelta(minutes=5)
    assert _refused(db, "it.chen", slapd.PASSWORDS["it.chen"], code="000000", now=later) == "bad_code"
    _sign_in(db, "it.chen", slapd.PASSWORDS["it.chen"], code=pyotp.TOTP(secret).at(later), now=later)
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "staff.sign_in")) == 1


def test_failures_are_throttled_as_for_the_local_sign_in(
    directory: slapd.Slapd, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_LOGIN_MAX_FAILURES", "2")
    reset_caches()
    factories.staff(db, username="nurse.li")
    db.commit()
    for n in range(2):
        assert (
            _refused(db, "nurse.li", "guess-number-" + str(n), now=NOW + timedelta(seconds=n))
            == "bad_password"
        )
    # the right password now waits: the directory is not even asked
    assert (
        _refused(db, "nurse.li", slapd.PASSWORDS["nurse.li"], now=NOW + timedelta(seconds=3)) == "throttled"
    )
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) == 0
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "staff.sign_in_throttled")) == 1


def test_the_directory_down_is_said_plainly_and_the_break_glass_admin_still_signs_in(
    directory: slapd.Slapd, client: TestClient, db: Session
) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.staff(db, username="nurse.li")
    db.commit()
    settings = get_settings()
    assert uses_directory(settings, "nurse.li") and not uses_directory(settings, "ROOT")
    directory.stop()
    page = client.get("/staff/login")
    assert 'id="ldap-hint"' in page.text
    token = csrf(page.text)
    down = client.post(
        "/staff/login",
        data={"username": "nurse.li", "password": slapd.PASSWORDS["nurse.li"], "csrf_token": token},
        follow_redirects=False,
    )
    assert down.status_code == 503 and 'id="directory-down"' in down.text
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) == 0
    # not the user's fault: no failed attempt counts against her
    assert db.scalar(sa.select(sa.func.count()).select_from(LoginAttempt)) == 0
    assert db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "staff.ldap_unavailable")) == 1
    with pytest.raises(DirectoryUnavailable):
        do_ldap_sign_in(db, settings, username="nurse.li", password="x-y-z", totp_code="", ip="10.0.0.7")
    db.rollback()
    local = client.post(
        "/staff/login",
        data={
            "username": "root",
            "password": PASSWORD,
            "totp_code": pyotp.TOTP(root.totp_secret).now(),
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert local.status_code == 303 and local.headers["location"] == "/staff"


def test_start_tls_is_required_and_the_certificate_checked(
    database_url: str, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = slapd.start(tmp_path, tls=True)
    try:
        assert server.cert_file is not None
        factories.staff(db, username="nurse.li")
        db.commit()
        # StartTLS on, the certificate's own CA given: signs in
        _configure(
            monkeypatch,
            [server.url],
            CARELOOP_LDAP_START_TLS="true",
            CARELOOP_LDAP_CA_FILE=str(server.cert_file),
        )
        _sign_in(db, "nurse.li", slapd.PASSWORDS["nurse.li"])
        # the system's CAs do not know this self-signed certificate: no password is sent
        _configure(monkeypatch, [server.url], CARELOOP_LDAP_START_TLS="true", CARELOOP_LDAP_CA_FILE="")
        with pytest.raises(DirectoryUnavailable):
            do_ldap_sign_in(
                db,
                get_settings(),
                username="nurse.li",
                password=slapd.PASSWORDS["nurse.li"],
                totp_code="",
                ip="10.0.0.7",
                now=NOW + timedelta(minutes=1),
            )
        db.rollback()
    finally:
        server.stop()


def test_groups_may_come_from_a_group_search_instead_of_member_of(
    directory: slapd.Slapd, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Directories without memberOf: her groups are the groupOfNames entries that list her DN."""
    monkeypatch.setenv("CARELOOP_LDAP_GROUP_BASE", slapd.GROUP_BASE)
    reset_caches()
    factories.department(db, code="CARD")
    factories.staff(db, username="head.wang")
    db.commit()
    _sign_in(db, "head.wang", slapd.PASSWORDS["head.wang"])
    assert _user(db, "head.wang").roles == {Role.NURSE, Role.MANAGER}
    directory.remove_member("managers", "head.wang")
    _sign_in(db, "head.wang", slapd.PASSWORDS["head.wang"], now=NOW + timedelta(minutes=1))
    assert _user(db, "head.wang").roles == {Role.NURSE}
