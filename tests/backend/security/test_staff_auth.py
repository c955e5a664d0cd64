"""Staff sign-in: argon2, TOTP for admins, no hint at which part was wrong, throttling, idle, CSRF, audit."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.periodic import end_idle_sessions
from backend.models import AuditEvent, LoginAttempt, Role, StaffSession, StaffUser
from backend.models.base import utcnow
from tests import factories
from tests.factories import PASSWORD


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, code: str = "") -> Any:
    token = _csrf(client.get("/staff/login").text)
    return client.post(
        "/staff/login",
        data={"username": username, "password": password, "totp_code": code, "csrf_token": token},
        follow_redirects=False,
    )


def _actions(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_admin_signs_in_with_password_and_totp_and_it_is_audited(client: TestClient, db: Session) -> None:
    admin = factories.staff(db, username="boss", role=Role.ADMIN, totp=True)
    db.commit()
    response = sign_in(client, "boss", code=pyotp.TOTP(admin.totp_secret or "").now())
    assert response.status_code == 303 and response.headers["location"] == "/staff"
    cookie = response.cookies.get("cl_session")
    assert cookie and "HttpOnly" in response.headers["set-cookie"]
    stored = db.scalars(sa.select(StaffSession)).one()
    assert stored.token_hash != cookie  # only a hash of the token is kept
    assert client.get("/staff/patients").status_code == 200
    assert _actions(db) == ["staff.sign_in"]


def test_password_is_hashed_with_argon2(db: Session) -> None:
    user = factories.staff(db, username="hashy")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_wrong_password_and_wrong_code_look_exactly_the_same(client: TestClient, db: Session) -> None:
    admin = factories.staff(db, username="boss", role=Role.ADMIN, totp=True)
    db.commit()
    good_code = pyotp.TOTP(admin.totp_secret or "").now()
    bad_password = sign_in(client, "boss", password="wrong password", code=good_code)
    bad_code = sign_in(client, "boss", code="000000" if good_code != "000000" else "111111")
    unknown_user = sign_in(client, "nobody", code=good_code)
    bodies = {r.text.replace(_csrf(r.text), "") for r in (bad_password, bad_code, unknown_user)}
    assert {r.status_code for r in (bad_password, bad_code, unknown_user)} == {401}
    assert len(bodies) == 1 and "Sign-in failed" in bodies.pop()
    assert "cl_session" not in client.cookies
    assert _actions(db) == ["staff.sign_in_failed"] * 3


def test_admin_without_a_code_cannot_sign_in(client: TestClient, db: Session) -> None:
    factories.staff(db, username="boss", role=Role.ADMIN, totp=True)
    db.commit()
    assert sign_in(client, "boss").status_code == 401


def test_admin_role_without_totp_enrolled_is_refused(client: TestClient, db: Session) -> None:
    factories.staff(db, username="boss", role=Role.ADMIN, totp=False)
    db.commit()
    assert sign_in(client, "boss").status_code == 401


def test_a_totp_code_is_accepted_only_once(client: TestClient, db: Session) -> None:
    admin = factories.staff(db, username="boss", role=Role.ADMIN, totp=True)
    db.commit()
    code = pyotp.TOTP(admin.totp_secret or "").now()
    assert sign_in(client, "boss", code=code).status_code == 303
    client.cookies.clear()
    assert sign_in(client, "boss", code=code).status_code == 401


def test_nurse_signs_in_with_password_only(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    assert sign_in(client, "NURSE1 ").status_code == 303  # usernames are case- and space-insensitive


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: TestClient, db: Session
) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    for _ in range(5):
        assert sign_in(client, "nurse1", password="guess").status_code == 401
    assert sign_in(client, "nurse1").status_code == 401
    assert "staff.sign_in_throttled" in _actions(db)
    db.execute(sa.update(LoginAttempt).values(at=utcnow() - timedelta(minutes=16)))
    db.commit()
    assert sign_in(client, "nurse1").status_code == 303  # the window has passed


def test_login_form_without_its_csrf_token_is_refused(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={"username": "nurse1", "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffSession)) == 0


def test_signed_in_forms_need_the_session_csrf_token(client: TestClient, db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    person = factories.patient(db, dept=dept)
    db.commit()
    sign_in(client, "agent1")
    refused = client.post(f"/staff/patients/{person.id}/chat-link", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    page = client.get(f"/staff/patients/{person.id}")
    made = client.post(f"/staff/patients/{person.id}/chat-link", data={"csrf_token": _csrf(page.text)})
    assert made.status_code == 200 and "/c/" in made.text
    assert client.post("/staff/logout", data={"csrf_token": "forged"}).status_code == 403


def test_idle_for_15_minutes_signs_out(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, "nurse1")
    db.execute(sa.update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=16)))
    db.commit()
    response = client.get("/staff/patients", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/staff/login"
    assert "staff.session_idle_timeout" in _actions(db)


def test_activity_keeps_the_session_alive(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, "nurse1")
    db.execute(sa.update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=14)))
    db.commit()
    assert client.get("/staff/patients", follow_redirects=False).status_code == 200


def test_periodic_job_ends_idle_sessions(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, "nurse1")
    db.execute(sa.update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=20)))
    db.commit()
    assert end_idle_sessions() == 1
    db.expire_all()
    assert db.scalars(sa.select(StaffSession.ended_at)).one() is not None


def test_sign_out_ends_the_session(client: TestClient, db: Session) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, "nurse1")
    page = client.get("/staff/patients")
    old_cookie = client.cookies.get("cl_session")
    assert (
        client.post(
            "/staff/logout", data={"csrf_token": _csrf(page.text)}, follow_redirects=False
        ).status_code
        == 303
    )
    client.cookies.set("cl_session", old_cookie or "")
    assert client.get("/staff/patients", follow_redirects=False).status_code == 303
    assert _actions(db)[-1] == "staff.sign_out"


def test_viewing_a_record_is_audited_and_other_departments_get_403(client: TestClient, db: Session) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    mine = factories.patient(db, dept=cardio, name="Chen Mine")
    theirs = factories.patient(db, dept=ortho, name="Chen Theirs")
    db.commit()
    sign_in(client, "nurse1")
    assert client.get(f"/staff/patients/{mine.id}").status_code == 200
    denied = client.get(f"/staff/patients/{theirs.id}")
    assert denied.status_code == 403 and "Chen Theirs" not in denied.text
    db.expire_all()
    rows = db.execute(
        sa.select(AuditEvent.action, AuditEvent.patient_id, AuditEvent.staff_id)
        .where(AuditEvent.action.like("patient.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("patient.view", mine.id, nurse.id),
        ("patient.view_denied", theirs.id, nurse.id),
    ]


def test_staff_lists_show_masked_phones_only(client: TestClient, db: Session) -> None:
    factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    factories.patient(db, phone="+8613800138000", name="Zhao Masked")
    db.commit()
    sign_in(client, "agent1")
    page = client.post(
        "/staff/patients", data={"q": "13800138000", "csrf_token": _csrf(client.get("/staff/patients").text)}
    )
    table = page.text[page.text.index("<table") :]
    assert "Zhao Masked" in table and "+86138****8000" in table and "13800138000" not in table
    assert "patient.search" in _actions(db)


def test_staff_ui_speaks_the_users_language(client: TestClient, db: Session) -> None:
    user = factories.staff(db, username="agent1", role=Role.SERVICE_AGENT)
    user.language = "zh-CN"
    db.commit()
    sign_in(client, "agent1")
    assert "姓名、电话、病历号或身份证号" in client.get("/staff/patients").text
    db.execute(sa.update(StaffUser).values(language="vi"))
    db.commit()
    assert "Tên, điện thoại, mã hồ sơ hoặc số giấy tờ" in client.get("/staff/patients").text


def test_every_staff_ui_string_is_translated() -> None:
    """Each _("...") in the staff templates has a zh-CN and a vi entry."""
    from pathlib import Path

    from babel.messages.pofile import read_po

    from backend.web.record_sections import SECTIONS

    root = Path(__file__).resolve().parents[3] / "backend"
    used: set[str] = set()
    for template in (root / "web" / "templates" / "staff").rglob("*.html"):
        used |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    used |= {"department", "ward", "questionnaire", "channel", "doctor"}  # group names shown through _(g)
    used |= {section.title for section in SECTIONS}  # the patient page's section headings, via _(title)
    for definition in (root.parent / "content" / "questionnaires").glob("*.yaml"):  # dimensions via _(dim)
        used |= set(re.findall(r"dimension: ([a-z_]+)", definition.read_text(encoding="utf-8")))
    for code in ("zh_CN", "vi"):
        with (root / "i18n" / f"{code}.po").open("rb") as po:
            catalog = read_po(po)
        missing = sorted(key for key in used if not (catalog.get(key) and catalog.get(key).string))
        assert missing == [], f"{code} lacks {missing}"
