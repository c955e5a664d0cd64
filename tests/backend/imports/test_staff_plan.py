"""The staff file's decisions are pure: a row against the account it names, the roles and department codes
it is resolved by, and the active administrators left by the rows before it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backend.imports.plan import Action
from backend.imports.rows import StaffRecord
from backend.imports.staff_plan import StaffContext, StaffNow, StaffTarget, decide_staff, target_of

CONTEXT = StaffContext(
    roles={"admin": "admin", "管理员": "admin", "nurse": "nurse", "护士": "nurse", "điều dưỡng": "nurse"},
    departments={"0301": 1, "0402": 2},
    admin_roles=frozenset({"admin"}),
    language="zh-CN",
)
RECORD = StaffRecord(
    username="wang",
    names=(("en", "Wang Fang"), ("zh-CN", "王芳")),
    role="护士",
    departments=("0301",),
    email=None,
    phone=None,
    active=None,
    language=None,
)
NOW = StaffNow(
    id=7, version=3, display_name="王芳", roles=("nurse",), department_ids=(1,), language="zh-CN",
    phone="+8613800138000", email="w@h.cn", active=True,
)  # fmt: skip


def test_a_new_account_takes_the_file_and_the_hospitals_defaults() -> None:
    assert target_of(RECORD, None, CONTEXT) == StaffTarget(
        "王芳", ("nurse",), (1,), "zh-CN", None, None, True
    )
    decision, admins = decide_staff(RECORD, None, CONTEXT, frozenset({1}))
    assert decision.action is Action.CREATE and admins == frozenset({1})


def test_the_display_name_is_the_one_in_the_accounts_language() -> None:
    english = replace(RECORD, language="en")
    assert isinstance(target := target_of(english, None, CONTEXT), StaffTarget)
    assert (target.display_name, target.language) == ("Wang Fang", "en")
    only_vi = replace(RECORD, names=(("vi", "Vương Phương"),), language="en")
    assert target_of(only_vi, None, CONTEXT).display_name == "Vương Phương"  # type: ignore[union-attr]


def test_empty_cells_keep_what_the_account_holds() -> None:
    decision, _admins = decide_staff(RECORD, NOW, CONTEXT, frozenset())
    assert decision.action is Action.SKIP and decision.target_id == 7
    keeps = replace(RECORD, departments=None)
    assert target_of(keeps, replace(NOW, department_ids=(1, 2)), CONTEXT).department_ids == (1, 2)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "admin"}, "roles"),
        ({"departments": ("0301", "0402")}, "departments"),
        ({"email": "new@h.cn"}, "email"),
        ({"phone": "+8613900139000"}, "phone"),
        ({"active": False}, "active"),
        ({"language": "vi"}, "language"),
        ({"names": (("zh-CN", "王小芳"),)}, "display_name"),
    ],
)
def test_any_difference_is_an_update(change: dict[str, object], field: str) -> None:
    decision, _admins = decide_staff(replace(RECORD, **change), NOW, CONTEXT, frozenset())  # type: ignore[arg-type]
    assert decision.action is Action.UPDATE, field


def test_unknown_role_and_department_are_both_reported() -> None:
    row = replace(RECORD, role="主任", departments=("0301", "0999"))
    decision, admins = decide_staff(row, NOW, CONTEXT, frozenset({7}))
    assert decision.action is Action.PROBLEM
    assert decision.problems == ("unknown role", "unknown department")
    assert admins == frozenset({7})


def test_the_last_active_admin_cannot_be_demoted_or_deactivated_but_one_of_two_can() -> None:
    boss = replace(NOW, id=1, roles=("admin",))
    deputy = replace(NOW, id=2, roles=("admin",))
    demote = replace(RECORD, role="nurse")
    deactivate = replace(RECORD, role="admin", active=False)
    for row in (demote, deactivate):
        decision, admins = decide_staff(row, boss, CONTEXT, frozenset({1}))
        assert decision.problems == ("would leave no active administrator",) and admins == frozenset({1})
    first, left = decide_staff(demote, boss, CONTEXT, frozenset({1, 2}))
    assert first.action is Action.UPDATE and left == frozenset({2})
    second, after = decide_staff(deactivate, deputy, CONTEXT, left)  # the next row sees the first's effect
    assert second.action is Action.PROBLEM and after == frozenset({2})


def test_a_non_admin_changes_freely_even_with_no_admin_recorded() -> None:
    decision, admins = decide_staff(replace(RECORD, active=False), NOW, CONTEXT, frozenset())
    assert decision.action is Action.UPDATE and admins == frozenset()


def test_a_role_the_account_holds_keeps_its_other_roles_and_another_replaces_them() -> None:
    head = replace(NOW, roles=("manager", "nurse"))  # a head nurse given manager in CareLoop
    kept = target_of(RECORD, head, CONTEXT)  # the file says nurse
    assert isinstance(kept, StaffTarget) and kept.roles == ("manager", "nurse")
    assert decide_staff(RECORD, head, CONTEXT, frozenset())[0].action is Action.SKIP
    moved = target_of(replace(RECORD, role="admin"), head, CONTEXT)
    assert isinstance(moved, StaffTarget) and moved.roles == ("admin",)
    keeps_admin = replace(NOW, id=1, roles=("admin", "nurse"))
    decision, admins = decide_staff(RECORD, keeps_admin, CONTEXT, frozenset({1}))  # nurse: already held
    assert decision.action is Action.SKIP and admins == frozenset({1})
