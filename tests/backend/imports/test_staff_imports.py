"""Staff accounts imported from the hospital's file on SQLite and PostgreSQL: every problem listed at once
by the dry run, accounts created and changed through the admin console's verbs (audited), no password and
no link in anything the import keeps, re-running the same file changing nothing, and the last active
administrator never taken away."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.imports import staff_apply, storage
from backend.imports.reconcile import report_kind
from backend.models import AuditEvent, PasswordReset, Role, StaffRole, StaffUser, WorkState
from backend.security.crypto import current_cipher
from tests import factories
from tests.backend.imports.files import csv_bytes
from tests.backend.imports.jobs_helpers import confirm, dry_run
from tests.conftest import reset_caches

HEADERS = ["用户名", "姓名", "English name", "角色", "科室代码", "邮箱", "手机号", "启用"]
ROWS = [
    ["wang.fang", "王芳", "Wang Fang", "护士", "0301", "Wang.Fang@Hospital.cn", "13800138000", "是"],
    ["li.ming", "李明", "Li Ming", "doctor", "0301、0402", "", "", ""],
    ["Zhao", "赵磊", "", "Follow-up nurse", "0402", "", "", "否"],  # a configured role by its name
    ["chen", "陈刚", "", "主任", "0301", "", "", ""],  # no such role
    ["sun", "孙丽", "", "nurse", "0999", "", "", ""],  # no such department
    ["wang.fang", "王芳", "", "nurse", "0301", "", "", ""],  # the same username again
    ["x", "某人", "", "nurse, doctor", "0301", "not-an-email", "12345", "maybe"],  # every bad value
]


@pytest.fixture
def hospital(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_DEFAULT_LANGUAGE", "zh-CN")
    monkeypatch.setenv("CARELOOP_DEFAULT_REGION", "CN")
    reset_caches()
    factories.department(db, code="0301")
    factories.department(db, code="0402")
    db.add(StaffRole(key="followup_nurse", name="Follow-up nurse"))
    factories.staff(db, username="boss", role=Role.ADMIN)
    db.commit()


def _errors(job: object) -> list[tuple[int, str]]:
    return sorted((e["at"], e["error"]) for e in job.errors)  # type: ignore[attr-defined]


def test_a_staff_file_lists_every_problem_then_creates_accounts_once(db: Session, hospital: None) -> None:
    dry = dry_run(db, "staff", csv_bytes(HEADERS, ROWS, encoding="utf-8-sig"))
    assert dry.state is WorkState.DONE, dry.failure
    assert dry.counts == {"to create": 3, "with problems": 4}
    assert _errors(dry) == [
        (5, "unknown role"),
        (6, "unknown department"),
        (7, "duplicate of an earlier row · 2"),
        (8, "invalid email address · 邮箱"),
        (8, "invalid phone number · 手机号"),
        (8, "more than one role: an account holds one · 角色"),
        (8, "not a username (lower-case letters, digits, dot, dash or underscore; 2 to 64) · 用户名"),
        (8, "not yes or no · 启用"),
    ]
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffUser)) == 1  # a dry run writes nothing

    done = confirm(db, dry)
    assert done.state is WorkState.DONE, done.failure
    assert done.counts == {"created": 3, "with problems": 4}
    db.expire_all()
    users = {u.username: u for u in db.scalars(sa.select(StaffUser))}
    wang, li, zhao = users["wang.fang"], users["li.ming"], users["zhao"]
    assert (wang.display_name, set(wang.roles), wang.language) == ("王芳", {Role.NURSE}, "zh-CN")
    assert (wang.email, wang.phone, wang.active) == ("wang.fang@hospital.cn", "+8613800138000", True)
    assert sorted(d.code for d in li.departments) == ["0301", "0402"] and set(li.roles) == {Role.DOCTOR}
    assert (set(zhao.roles), zhao.active) == ({"followup_nurse"}, False)
    # the email is stored encrypted like the phone
    raw = db.execute(sa.text("SELECT email FROM staff_users WHERE username = 'wang.fang'")).scalar_one()
    assert "hospital" not in raw
    # created through the console's verb, audited, with no usable password and no link issued by the import
    created = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.create")).all()
    assert sorted(e.subject_id for e in created) == sorted([wang.id, li.id, zhao.id])
    assert db.scalar(sa.select(sa.func.count()).select_from(PasswordReset)) == 0
    assert [u.username for u in staff_apply.needing_link(db, done.created_at)] == ["li.ming", "wang.fang"]
    report = current_cipher().unseal(report_kind(done.id), storage.report_path(done.id).read_bytes())
    book = load_workbook(io.BytesIO(report), read_only=True)
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row]
    assert ("boss" in cells) and not any("password" in str(c) for c in cells)  # in CareLoop, not in the file

    again = dry_run(db, "staff", csv_bytes(HEADERS, ROWS, encoding="utf-8-sig"))
    assert again.counts == {"unchanged": 3, "with problems": 4}  # the same file changes nothing


def test_a_file_changes_role_scope_and_deactivates_but_keeps_the_last_admin(
    db: Session, hospital: None
) -> None:
    nurse = factories.staff(db, username="wang.fang", role=Role.NURSE)
    nurse.email = "old@hospital.cn"
    db.commit()
    rows = [
        ["boss", "老板", "", "nurse", "", "", "", ""],  # the only administrator demoted
        ["wang.fang", "王芳", "", "Bác sĩ", "0402", "", "", "否"],  # a built-in role named in Vietnamese
    ]
    dry = dry_run(db, "staff", csv_bytes(HEADERS, rows))
    assert dry.counts == {"to update": 1, "with problems": 1}
    assert _errors(dry) == [(2, "would leave no active administrator")]
    assert confirm(db, dry).counts == {"updated": 1, "with problems": 1}
    db.expire_all()
    wang = db.scalars(sa.select(StaffUser).where(StaffUser.username == "wang.fang")).one()
    assert (set(wang.roles), wang.active, wang.display_name) == ({Role.DOCTOR}, False, "王芳")
    assert [d.code for d in wang.departments] == ["0402"] and wang.email == "old@hospital.cn"  # kept
    actions = db.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.subject_type == "staff_user", AuditEvent.subject_id == wang.id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["staff.update", "staff.deactivate"]
    update = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.update")).one()
    assert update.detail["reason"] == "staff import" and update.detail["roles_before"] == ["nurse"]
    boss = db.scalars(sa.select(StaffUser).where(StaffUser.username == "boss")).one()
    assert set(boss.roles) == {Role.ADMIN} and boss.active


def test_a_second_admin_lets_the_first_go_but_not_both(db: Session, hospital: None) -> None:
    factories.staff(db, username="deputy", role=Role.ADMIN)
    db.commit()
    rows = [
        ["boss", "老板", "", "admin", "", "", "", "否"],
        ["deputy", "副手", "", "admin", "", "", "", "否"],
    ]
    dry = dry_run(db, "staff", csv_bytes(HEADERS, rows))
    assert dry.counts == {"to update": 1, "with problems": 1}
    assert _errors(dry) == [(3, "would leave no active administrator")]
    assert confirm(db, dry).counts == {"updated": 1, "with problems": 1}
    db.expire_all()
    active = {name: on for name, on in db.execute(sa.select(StaffUser.username, StaffUser.active))}
    assert active == {"boss": False, "deputy": True}


def test_the_command_imports_a_staff_file_and_prints_no_link(
    db: Session, hospital: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.app.cli import main

    path = tmp_path / "staff.csv"
    path.write_bytes(
        csv_bytes(["Username", "Name", "Role", "Departments"], [["li.ming", "Li Ming", "Doctor", "0301"]])
    )
    assert main(["import", "staff", str(path), "--source", "HR", "--confirm"]) == 0
    out = capsys.readouterr().out
    assert "created: 1" in out and "/staff/password/" not in out
    db.expire_all()
    li = db.scalars(sa.select(StaffUser).where(StaffUser.username == "li.ming")).one()
    assert (li.display_name, set(li.roles), [d.code for d in li.departments]) == (
        "Li Ming",
        {Role.DOCTOR},
        ["0301"],
    )
