"""Staff accounts: the form's checks, create (also from `careloop staff-add`), edit with a version check,
deactivate ending every session at once, the last admin kept, TOTP reset; each audited."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import people
from backend.admin.people import StaffForm, parse_staff_form
from backend.app.settings import get_settings
from backend.models import AuditEvent, Role, StaffSession, StaffUser
from backend.security.auth import SignInRefused, do_sign_in, resume_session
from backend.security.permissions import holding
from backend.services.refusal import ActionRefused, Reason
from tests import factories
from tests.factories import PASSWORD

GOOD = {"username": "Nurse.Li", "display_name": "Li Na", "language": "zh-CN", "phone": ""}


def _form(*, roles: tuple[str, ...] = ("nurse",), **changes: str) -> StaffForm:
    return parse_staff_form({**GOOD, **changes}, [], roles=roles, default_region="CN")


def test_the_form_is_normalised() -> None:
    form = parse_staff_form(
        {**GOOD, "phone": "138 0013 8000"},
        ["3", "1", "3"],
        roles=["nurse", "manager", "nurse"],
        default_region="CN",
    )
    roles = frozenset({Role.NURSE, Role.MANAGER})
    assert form == StaffForm("nurse.li", "Li Na", roles, (1, 3), "zh-CN", "+8613800138000")
    assert all(isinstance(role, Role) for role in form.roles)


def test_the_work_email_is_normalised_kept_when_absent_and_cleared_when_empty(db: Session) -> None:
    assert _form(email=" Li.Na@Hospital.CN ").email == "li.na@hospital.cn"
    assert _form().email is None and _form(email="").email == ""
    created = people.do_create_staff(db, form=_form(email="li.na@hospital.cn"), password=None, by=None)
    user = created.user
    people.do_update_staff(db, staff_id=user.id, version=user.version, form=_form(), by=None)
    assert user.email == "li.na@hospital.cn"  # a form without the field keeps it
    people.do_update_staff(db, staff_id=user.id, version=user.version, form=_form(email=""), by=None)
    assert user.email is None
    changed = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.update")).all()
    assert [e.detail["changed"] for e in changed] == [[], ["email"]]


@pytest.mark.parametrize(
    ("changes", "departments", "reason"),
    [
        ({"roles": []}, [], Reason.UNKNOWN_ROLE),  # an account holds at least one role
        ({"roles": [""]}, [], Reason.UNKNOWN_ROLE),
        (
            {"roles": ["nurse", "x" * 33]},
            [],
            Reason.UNKNOWN_ROLE,
        ),  # unknown to the database: the verbs refuse
        ({"username": "a"}, [], Reason.USERNAME_INVALID),
        ({"username": "li na"}, [], Reason.USERNAME_INVALID),
        ({"username": "x" * 65}, [], Reason.USERNAME_INVALID),
        ({"display_name": "  "}, [], Reason.NAME_REQUIRED),
        ({"display_name": "x" * 201}, [], Reason.NAME_REQUIRED),
        ({"language": "fr"}, [], Reason.UNKNOWN_LANGUAGE),
        ({"phone": "not a phone"}, [], Reason.PHONE_INVALID),
        ({"email": "not an email"}, [], Reason.EMAIL_INVALID),
        ({}, ["x"], Reason.NO_SUCH_DEPARTMENT),
        ({}, ["１２"], Reason.NO_SUCH_DEPARTMENT),
        ({}, ["9" * 12], Reason.NO_SUCH_DEPARTMENT),
    ],
)
def test_bad_form_values_are_refused_by_name(
    changes: dict[str, object], departments: list[str], reason: Reason
) -> None:
    roles = changes.pop("roles", ["nurse"])
    assert isinstance(roles, list)
    with pytest.raises(ActionRefused) as refused:
        parse_staff_form({**GOOD, **changes}, departments, roles=roles, default_region="CN")  # type: ignore[dict-item]
    assert refused.value.reason is reason


def test_create_refuses_a_taken_username_and_unknown_departments(db: Session) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    created = people.do_create_staff(db, form=_form(), password=None, by=root.id)
    assert created.totp_secret is None and created.user.version == 1
    with pytest.raises(ActionRefused) as taken:
        people.do_create_staff(db, form=_form(display_name="Another"), password=None, by=root.id)
    assert taken.value.reason is Reason.USERNAME_TAKEN
    with pytest.raises(ActionRefused) as unknown:
        people.do_create_staff(
            db,
            form=parse_staff_form({**GOOD, "username": "n2"}, ["999"], roles=["nurse"], default_region="CN"),
            password=None,
            by=root.id,
        )
    assert unknown.value.reason is Reason.NO_SUCH_DEPARTMENT
    with pytest.raises(ActionRefused) as unknown_role:
        people.do_create_staff(
            db, form=_form(username="n3", roles=("nurse", "wizard")), password=None, by=root.id
        )
    assert unknown_role.value.reason is Reason.UNKNOWN_ROLE
    assert db.scalar(sa.select(StaffUser.id).where(StaffUser.username == "n3")) is None
    # one administrative role among several is enough to need an authenticator
    admin = people.do_create_staff(
        db, form=_form(username="boss2", roles=("nurse", "admin")), password=None, by=root.id
    )
    assert admin.totp_secret and admin.user.totp_secret == admin.totp_secret
    assert admin.user.roles == {Role.NURSE, Role.ADMIN}


def test_a_second_admins_stale_save_is_refused_and_nothing_is_lost(db: Session) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    dept = factories.department(db)
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    shown = nurse.version
    first = StaffForm("nurse1", "Nurse One", frozenset({Role.NURSE}), (dept.id,), "vi", None)
    people.do_update_staff(db, staff_id=nurse.id, version=shown, form=first, by=root.id)
    db.commit()
    second = StaffForm("nurse1", "Nurse Uno", frozenset({Role.DOCTOR}), (), "en", None)
    with pytest.raises(ActionRefused) as stale:
        people.do_update_staff(db, staff_id=nurse.id, version=shown, form=second, by=root.id)
    assert stale.value.reason is Reason.EDITED_MEANWHILE
    db.rollback()
    db.refresh(nurse)
    assert (nurse.display_name, nurse.language, [d.id for d in nurse.departments]) == (
        "Nurse One",
        "vi",
        [dept.id],
    )
    assert nurse.version == shown + 1
    event = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.update")).one()
    assert event.detail["changed"] == ["departments", "display_name", "language"]


def test_deactivating_ends_every_session_at_once_and_refuses_sign_in(db: Session) -> None:
    settings = get_settings()
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.staff(db, username="nurse1")
    sessions = [
        do_sign_in(db, settings, username="nurse1", password=PASSWORD, totp_code="", ip=f"10.0.0.{n}")
        for n in (1, 2)
    ]
    db.commit()
    nurse = db.scalars(sa.select(StaffUser).where(StaffUser.username == "nurse1")).one()
    ended = people.do_set_active(db, staff_id=nurse.id, version=nurse.version, active=False, by=root.id)
    db.commit()
    assert ended == 2
    assert all(s.ended_at is not None for s in db.scalars(sa.select(StaffSession)))
    assert all(resume_session(db, settings, new.token) is None for new in sessions)
    with pytest.raises(SignInRefused):
        do_sign_in(db, settings, username="nurse1", password=PASSWORD, totp_code="", ip="10.0.0.3")
    people.do_set_active(db, staff_id=nurse.id, version=nurse.version, active=True, by=root.id)
    db.commit()
    do_sign_in(db, settings, username="nurse1", password=PASSWORD, totp_code="", ip="10.0.0.4")
    actions = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.staff_id == root.id)).all()
    assert actions == ["staff.deactivate", "staff.reactivate"]


def test_the_last_active_admin_is_neither_deactivated_nor_demoted(db: Session) -> None:
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    other = factories.staff(db, username="root2", role=Role.ADMIN, totp=True)
    db.commit()
    people.do_set_active(db, staff_id=other.id, version=other.version, active=False, by=root.id)
    db.commit()
    with pytest.raises(ActionRefused) as last:
        people.do_set_active(db, staff_id=root.id, version=root.version, active=False, by=root.id)
    assert last.value.reason is Reason.LAST_ADMIN
    db.rollback()
    demote = StaffForm("root", "Root", frozenset({Role.MANAGER, Role.NURSE}), (), "en", None, "steps down")
    with pytest.raises(ActionRefused) as demoted:
        people.do_update_staff(db, staff_id=root.id, version=root.version, form=demote, by=root.id)
    assert demoted.value.reason is Reason.LAST_ADMIN
    db.rollback()
    db.refresh(root)
    assert root.active and root.roles == {Role.ADMIN}
    # a deactivated admin may be demoted: it changes nothing about who can administer
    people.do_update_staff(
        db,
        staff_id=other.id,
        version=other.version,
        form=StaffForm("root2", "R2", frozenset({Role.NURSE}), (), "en", None, "back to the ward"),
        by=root.id,
    )


def test_resetting_totp_gives_a_new_secret_and_ends_the_sessions(db: Session) -> None:
    settings = get_settings()
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    nurse = factories.staff(db, username="nurse1")
    do_sign_in(db, settings, username="nurse1", password=PASSWORD, totp_code="", ip="10.0.0.1")
    old = root.totp_secret
    secret = people.do_reset_totp(db, staff_id=root.id, version=root.version, by=root.id)
    db.commit()
    assert secret != old and root.totp_secret == secret and root.totp_last_step is None
    assert "otpauth://totp/CareLoop:root" in people.provisioning_uri(root, secret)
    assert db.scalars(sa.select(StaffSession.ended_at).where(StaffSession.staff_id == nurse.id)).one() is None


def test_the_list_filters_by_role_department_activity_and_text(db: Session) -> None:
    dept = factories.department(db)
    factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    factories.staff(db, username="nurse1", departments=[dept])
    gone = factories.staff(db, username="nurse2")
    gone.active = False
    factories.staff(db, username="doc1", role=Role.DOCTOR, departments=[dept])
    db.commit()

    def names(**values: str) -> list[str]:
        return [row.user.username for row in people.staff_list(db, people.parse_staff_filters(values))]

    assert names() == ["doc1", "nurse1", "nurse2", "root"]
    assert names(role="nurse") == ["nurse1", "nurse2"]
    assert names(department=str(dept.id)) == ["doc1", "nurse1"]
    assert names(active="no") == ["nurse2"]
    assert names(q="NURSE", active="yes") == ["nurse1"]
    assert names(q="%") == []


def test_careloop_staff_add_uses_the_same_verb(database_url: str, db: Session) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "CARELOOP_NEW_STAFF_PASSWORD": "short"}
    root = Path(__file__).resolve().parents[3]
    command = [sys.executable, "-m", "backend.app.cli", "staff-add", "nurse9", "--role", "nurse"]
    refused = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "at least 12" in refused.stderr
    env["CARELOOP_NEW_STAFF_PASSWORD"] = "a-fine-long-password"
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    db.expire_all()
    user = db.scalars(sa.select(StaffUser).where(StaffUser.username == "nurse9")).one()
    assert user.roles == {Role.NURSE} and user.version == 1
    assert db.scalars(sa.select(AuditEvent.action)).all() == ["staff.create"]


@pytest.mark.postgres
def test_two_admins_deactivating_each_other_at_once_leave_one_admin(database_url: str, db: Session) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: there is no race to lose")
    import threading

    from backend.app.db import session_scope

    first = factories.staff(db, username="root1", role=Role.ADMIN, totp=True)
    second = factories.staff(db, username="root2", role=Role.ADMIN, totp=True)
    db.commit()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def deactivate(actor: StaffUser, target: StaffUser) -> None:
        barrier.wait()
        try:
            with session_scope() as session:
                people.do_set_active(session, staff_id=target.id, version=1, active=False, by=actor.id)
            outcomes.append("done")
        except ActionRefused as exc:
            outcomes.append(str(exc.reason))

    threads = [
        threading.Thread(target=deactivate, args=(first, second)),
        threading.Thread(target=deactivate, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["done", "last_admin"]
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).where(holding(Role.ADMIN), StaffUser.active.is_(True))) == 1


def test_the_list_takes_three_statements_whatever_its_length(db: Session) -> None:
    departments = [factories.department(db) for _ in range(3)]
    for n in range(30):
        roles = {Role.NURSE, Role.MANAGER} if n % 2 else {Role.NURSE}
        factories.staff(db, username=f"nurse{n}", roles=roles, departments=departments[: n % 3 + 1])
    db.commit()
    db.expire_all()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = db.get_bind()
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        rows = people.staff_list(db, people.parse_staff_filters({}))
        names = [(row.user.username, len(row.user.departments), row.user.role_list()) for row in rows]
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert (
        len(names) == 30
        and names[0] == ("nurse0", 1, ["nurse"])
        and names[1] == ("nurse1", 2, ["nurse", "manager"])
    )
    # the accounts, their departments, their roles
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 3
