"""The admin console's pages through HTTP: admins only (others get a 403, recorded), every page renders in
three languages, the audit viewer records its own viewing, exports are workbooks of what is shown, the
health JSON and the settings page never show a secret."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, StaffUser
from tests import factories
from tests.backend.admin.helpers import admin, sign_in

PAGES = (
    "/staff/admin",
    "/staff/admin/staff",
    "/staff/admin/staff/new",
    "/staff/admin/roles",
    "/staff/admin/roles/new",
    "/staff/admin/roles/nurse",
    "/staff/admin/org/department",
    "/staff/admin/org/ward",
    "/staff/admin/org/clinician",
    "/staff/admin/audit",
    "/staff/admin/health",
    "/staff/admin/settings",
)


def _actions(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_a_nurse_is_refused_every_admin_page_and_the_attempt_is_recorded(
    client: TestClient, db: Session
) -> None:
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, nurse)
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 403, page
        assert "for administrators" in response.text
    assert _actions(db).count("admin.view_denied") == len(PAGES)
    assert "/staff/admin" not in client.get("/staff").text  # no nav entry either


@pytest.mark.parametrize("language", ["en", "zh-CN", "vi"])
def test_every_admin_page_renders_in_each_language(client: TestClient, db: Session, language: str) -> None:
    root = admin(db)
    root.language = language
    dept = factories.department(db)
    factories.staff(db, username="nurse1", departments=[dept])
    db.commit()
    sign_in(client, root)
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, (page, response.text[:500])
    home = client.get("/staff/admin").text
    assert {"en": "Staff accounts", "zh-CN": "员工账号", "vi": "Tài khoản nhân viên"}[language] in home


def test_viewing_the_audit_log_is_itself_audited_and_filters_work(client: TestClient, db: Session) -> None:
    root = admin(db)
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, nurse)
    client.cookies.clear()
    token = sign_in(client, root)
    page = client.post("/staff/admin/audit", data={"csrf_token": token, "staff": str(nurse.id)})
    assert page.status_code == 200
    assert page.text.count("<tr data-event=") == 1 and "staff.sign_in" in page.text
    by_action = client.get("/staff/admin/audit?action=staff.sign_in")
    assert by_action.text.count("<tr data-event=") == 2
    prefix = client.get("/staff/admin/audit?action=audit.")
    assert "audit.view" in prefix.text  # the two views before this one
    bad = client.get("/staff/admin/audit?start=yesterday")
    assert bad.status_code == 400 and 'id="filter-error"' in bad.text
    views = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "audit.view")).all()
    assert len(views) == 3 and all(v.staff_id == root.id for v in views)
    assert views[0].detail["filters"]["staff"] == nurse.id


def test_the_audit_log_pages_through_every_event_once(client: TestClient, db: Session) -> None:
    from backend.services import audit

    root = admin(db)
    for n in range(120):
        audit.record(db, "test.event", staff_id=root.id, n=n)
    db.commit()
    token = sign_in(client, root)
    seen: list[str] = []
    values = {"csrf_token": token, "action": "test.event"}
    while True:
        page = client.post("/staff/admin/audit", data=values).text
        seen += page.split('data-event="')[1:]
        if 'name="after"' not in page:
            break
        values["after"] = page.split('name="after" value="')[1].split('"')[0]
    assert len(seen) == 120


def test_exports_are_workbooks_of_the_rows_shown_and_are_audited(client: TestClient, db: Session) -> None:
    root = admin(db)
    dept = factories.department(db, code="=CARD")
    factories.staff(db, username="nurse1", departments=[dept])
    factories.staff(db, username="doc1", role=Role.DOCTOR)
    db.commit()
    token = sign_in(client, root)
    staff_book = load_workbook(io.BytesIO(client.get("/staff/admin/staff.xlsx?role=nurse").content))
    cells = [[c.value for c in row] for row in staff_book.active.iter_rows()]
    data = cells[cells.index(next(c for c in cells if c[0] == "username")) + 1 :]
    assert [row[0] for row in data] == ["nurse1"]
    assert data[0][3] == "'=CARD"  # formula-safe
    departments = load_workbook(io.BytesIO(client.get("/staff/admin/org/department/export.xlsx").content))
    assert any(row[0].value == "'=CARD" for row in departments.active.iter_rows())
    audit_book = client.post("/staff/admin/audit/export.xlsx", data={"csrf_token": token, "action": "staff."})
    assert audit_book.headers["content-type"].startswith("application/vnd.openxmlformats")
    actions = _actions(db)
    assert {"admin.staff_export", "admin.department_export", "audit.export"} <= set(actions)


def test_health_json_reports_each_check_and_needs_an_admin(client: TestClient, db: Session) -> None:
    assert client.get("/staff/admin/health.json", follow_redirects=False).status_code == 303  # not signed in
    root = admin(db)
    db.commit()
    sign_in(client, root)
    response = client.get("/staff/admin/health.json")
    body = response.json()
    names = {c["name"]: c for c in body["checks"]}
    assert names["queue"]["reason"] == "inline" and names["workers"]["reason"] == "inline"
    assert names["scheduler"]["status"] == "failing"  # no heartbeat yet in a fresh database
    assert body["status"] == "failing" and response.status_code == 503
    from backend.admin.health_facts import do_beat

    do_beat(db)
    db.commit()
    again = client.get("/staff/admin/health.json").json()
    assert {c["name"]: c for c in again["checks"]}["scheduler"]["reason"] == "heartbeat_fresh"
    assert {"disk:media", "disk:data", "rasa", "adt"} <= {c["name"] for c in again["checks"]}


def test_the_settings_page_shows_sources_and_never_a_secret(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    root = admin(db)
    db.commit()
    sign_in(client, root)
    page = client.get("/staff/admin/settings").text
    assert os.environ["CARELOOP_SECRET_KEY"] not in page
    assert os.environ["CARELOOP_DATA_KEY"] not in page
    assert 'data-setting="secret_key" data-source="environment"' in page
    assert 'data-setting="hospital_name" data-source="default"' in page
    assert "admin.settings_view" in _actions(db)


def test_the_one_time_password_page_is_reachable_without_signing_in(client: TestClient, db: Session) -> None:
    response = client.get("/staff/password/not-a-real-token")
    assert response.status_code == 404 and "not valid" in response.text
    assert isinstance(db.scalar(sa.select(sa.func.count()).select_from(StaffUser)), int)


def _edit(
    client: TestClient,
    token: str,
    user: StaffUser,
    version: int,
    roles: list[str] | None = None,
    **changes: str,
) -> object:
    values: dict[str, str | list[str]] = {
        "csrf_token": token,
        "version": str(version),
        "username": user.username,
        "display_name": user.display_name,
        "roles": roles if roles is not None else user.role_list(),
        "language": user.language,
        "phone": "",
        **changes,
    }
    return client.post(f"/staff/admin/staff/{user.id}", data=values, follow_redirects=False)


def test_two_admins_editing_one_account_the_second_is_told_and_keeps_what_she_typed(
    client: TestClient, db: Session
) -> None:
    root = admin(db)
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    token = sign_in(client, root)
    shown = nurse.version
    first = _edit(client, token, nurse, shown, display_name="Nurse From First")
    assert first.status_code == 303
    second = _edit(client, token, nurse, shown, display_name="Nurse From Second")
    assert second.status_code == 409
    assert 'value="Nurse From Second"' in second.text  # what she typed is still in the form
    assert 'id="theirs"' in second.text and "Nurse From First" in second.text
    db.expire_all()
    assert db.get(StaffUser, nurse.id).display_name == "Nurse From First"
    again = second.text.split('name="version" value="')[1].split('"')[0]
    assert _edit(client, token, nurse, int(again), display_name="Nurse From Second").status_code == 303
    db.expire_all()
    assert db.get(StaffUser, nurse.id).display_name == "Nurse From Second"


def test_promoting_to_admin_shows_the_new_authenticator_key_once(client: TestClient, db: Session) -> None:
    root = admin(db)
    manager = factories.staff(db, username="manager1", role=Role.MANAGER)
    db.commit()
    token = sign_in(client, root)
    response = _edit(
        client, token, manager, manager.version, roles=["manager", "admin"], reason="runs the console now"
    )
    assert response.status_code == 200 and 'id="totp-secret"' in response.text
    db.expire_all()
    assert db.get(StaffUser, manager.id).roles == {Role.MANAGER, Role.ADMIN}
    secret = db.get(StaffUser, manager.id).totp_secret
    assert secret and secret in response.text
    assert secret not in client.get(f"/staff/admin/staff/{manager.id}").text


def test_a_non_admin_cannot_post_admin_actions(client: TestClient, db: Session) -> None:
    admin(db)
    nurse = factories.staff(db, username="nurse1")
    other = factories.staff(db, username="nurse2")
    db.commit()
    token = sign_in(client, nurse)
    response = client.post(
        f"/staff/admin/staff/{other.id}/deactivate", data={"csrf_token": token, "version": "1"}
    )
    assert response.status_code == 403
    db.expire_all()
    assert db.get(StaffUser, other.id).active
