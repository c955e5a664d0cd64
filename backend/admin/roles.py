"""Roles: the list an admin filters and exports, and the verbs that add a role, change what a role may
do, delete one, and give a staff member one more role (each audited in the same transaction, a role change
with its reason).

Two guards: a role someone holds cannot be deleted (nor a built-in one), and no change may leave no
active staff member holding the permission to manage staff and roles (the "last admin"). The rows that
guard reads are locked first, in one order, as backend/admin/people.py does for accounts.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import people
from backend.models import Role, StaffRole, StaffUser, StaffUserRole, staff_role_permissions
from backend.security.permissions import (
    KEEPER,
    Permission,
    forget,
    holding,
    needs_totp,
    permissions_of,
    write_permissions,
)
from backend.services import audit
from backend.services.message_log import InvalidFilter, text_value
from backend.services.refusal import ActionRefused, Reason
from backend.services.spreadsheet import formula_safe

KEY = re.compile(r"[a-z][a-z0-9._-]{1,31}")  # a letter first: never mistaken for an id in a path
MAX_NAME = 100


@dataclass(frozen=True)
class RoleForm:
    """What an admin sets on a role (the key only when adding it)."""

    key: str
    name: str
    permissions: frozenset[Permission]


def parse_role_form(values: Mapping[str, str], ticked: Sequence[str]) -> RoleForm:
    """The form's values, checked; raises ActionRefused naming the first that does not fit."""
    key = values.get("key", "").strip().lower()
    if not KEY.fullmatch(key):
        raise ActionRefused(Reason.CODE_INVALID)
    name = values.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        raise ActionRefused(Reason.NAME_REQUIRED)
    chosen = set()
    for text in ticked:
        try:
            chosen.add(Permission(text))
        except ValueError as exc:
            raise ActionRefused(Reason.NO_SUCH_CHOICE) from exc
    return RoleForm(key, name, frozenset(chosen))


def _locked_role(session: Session, key: str) -> StaffRole:
    people.lock_admins(session)
    role = session.scalars(
        sa.select(StaffRole)
        .where(StaffRole.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if role is None:
        raise ActionRefused(Reason.UNKNOWN_ROLE)
    return role


def _holders_left(session: Session, role_key: str) -> bool:
    """Whether an active staff member still holds the keeper permission through a role other than
    `role_key`."""
    other_keepers = sa.select(staff_role_permissions.c.role_key).where(
        staff_role_permissions.c.permission == KEEPER.value, staff_role_permissions.c.role_key != role_key
    )
    through_others = sa.select(StaffUserRole.staff_id).where(StaffUserRole.role_key.in_(other_keepers))
    return (
        session.scalar(
            sa.select(StaffUser.id)
            .where(StaffUser.id.in_(through_others), StaffUser.active.is_(True))
            .limit(1)
        )
        is not None
    )


def do_create_role(session: Session, *, form: RoleForm, by: int, ip: str | None = None) -> StaffRole:
    if session.get(StaffRole, form.key) is not None:
        raise ActionRefused(Reason.CODE_IN_USE)
    if session.scalar(sa.select(StaffRole.key).where(sa.func.lower(StaffRole.name) == form.name.lower())):
        raise ActionRefused(Reason.ROLE_NAME_TAKEN)
    role = StaffRole(key=form.key, name=form.name, builtin=False)
    session.add(role)
    session.flush()
    write_permissions(session, form.key, form.permissions)
    forget(session)
    audit.record(
        session,
        "role.create",
        staff_id=by,
        ip=ip,
        role=form.key,
        permissions=sorted(p.value for p in form.permissions),
    )
    return role


def do_update_role(
    session: Session, *, key: str, version: int, form: RoleForm, by: int, ip: str | None = None
) -> StaffRole:
    """A role's name (configured roles only: the built-in ones are named by the catalogues) and its
    permissions. Taking the keeper permission from a role is refused when nobody else would hold it."""
    role = _locked_role(session, key)
    if role.version != version:
        raise ActionRefused(Reason.EDITED_MEANWHILE)
    before = permissions_of(session, key)
    if KEEPER in before and KEEPER not in form.permissions and not _holders_left(session, key):
        raise ActionRefused(Reason.LAST_ADMIN)
    if not role.builtin and form.name != role.name:
        taken = session.scalar(
            sa.select(StaffRole.key).where(
                sa.func.lower(StaffRole.name) == form.name.lower(), StaffRole.key != key
            )
        )
        if taken:
            raise ActionRefused(Reason.ROLE_NAME_TAKEN)
        role.name = form.name
    write_permissions(session, key, form.permissions)
    forget(session)
    role.version += 1
    audit.record(
        session,
        "role.update",
        staff_id=by,
        ip=ip,
        role=key,
        added=sorted(p.value for p in form.permissions - before),
        removed=sorted(p.value for p in before - form.permissions),
    )
    return role


def do_delete_role(session: Session, *, key: str, by: int, ip: str | None = None) -> None:
    """Refused for a built-in role and for one someone holds (active or not: reactivating an account
    must not find its role gone)."""
    role = _locked_role(session, key)
    if role.builtin:
        raise ActionRefused(Reason.ROLE_BUILTIN)
    if session.scalar(sa.select(StaffUser.id).where(holding(key)).limit(1)) is not None:
        raise ActionRefused(Reason.ROLE_IN_USE)
    session.delete(role)
    session.flush()
    forget(session)
    audit.record(session, "role.delete", staff_id=by, ip=ip, role=key)


def do_assign_role(
    session: Session, *, staff_id: int, role: str, reason: str, by: int | None, ip: str | None = None
) -> bool:
    """Give a staff member one more role beside those she holds, with the reason the audit row keeps.
    False when she already holds it (nothing written). Taking a role away is the account page's work
    (where the last admin is guarded); adding one never takes anything away."""
    reason = reason.strip()[: people.MAX_REASON]
    if not reason:
        raise ActionRefused(Reason.ROLE_REASON_REQUIRED)
    user = people.locked(session, staff_id)
    people.check_roles(session, {role})
    if user.has_role(role):
        return False
    if needs_totp(session, {role}) and not user.totp_secret:
        # she could no longer sign in with her password: the account's page gives the role and enrols one
        raise ActionRefused(Reason.ROLE_NEEDS_AUTHENTICATOR)
    people.take_roles(session, user, {*user.roles, role}, by=by, ip=ip, reason=reason)
    return True


# --- the list ------------------------------------------------------------------------------------

LIST_FIELDS = ("permission", "q")


@dataclass(frozen=True)
class RoleFilters:
    permission: Permission | None = None
    text: str = ""  # part of the key or the name

    def audit_detail(self) -> dict[str, Any]:
        return {"permission": self.permission.value if self.permission else None, "text": bool(self.text)}


def parse_role_filters(values: Mapping[str, str]) -> RoleFilters:
    text = text_value(values, "permission")
    try:
        permission = Permission(text) if text else None
    except ValueError as exc:
        raise InvalidFilter("permission") from exc
    return RoleFilters(permission=permission, text=text_value(values, "q").lower())


@dataclass(frozen=True)
class RoleRow:
    role: StaffRole
    permissions: frozenset[Permission]
    members: int  # accounts holding it, active or not


def role_rows(session: Session, filters: RoleFilters = RoleFilters()) -> list[RoleRow]:
    """Every role with its permissions and how many accounts hold it, in three statements."""
    roles = list(session.scalars(sa.select(StaffRole).order_by(StaffRole.builtin.desc(), StaffRole.key)))
    counts: dict[str, int] = {
        str(role): n
        for role, n in session.execute(
            sa.select(StaffUserRole.role_key, sa.func.count()).group_by(StaffUserRole.role_key)
        )
    }
    rows = [RoleRow(r, permissions_of(session, r.key), counts.get(r.key, 0)) for r in roles]
    if filters.permission is not None:
        rows = [row for row in rows if filters.permission in row.permissions]
    if filters.text:
        rows = [r for r in rows if filters.text in r.role.key or filters.text in r.role.name.lower()]
    return rows


def role_keys(session: Session) -> list[str]:
    """Every role's key, the built-in ones first in their usual order: the staff form's choices."""
    configured = session.scalars(
        sa.select(StaffRole.key).where(StaffRole.builtin.is_(False)).order_by(StaffRole.key)
    )
    return [r.value for r in Role] + list(configured)


def configured_names(session: Session) -> dict[str, str]:
    """Names of the roles an admin added (the built-in ones are named by the catalogues)."""
    query = sa.select(StaffRole.key, StaffRole.name).where(StaffRole.builtin.is_(False))
    return {key: name for key, name in session.execute(query)}


def staff_by_username(session: Session, username: str) -> StaffUser | None:
    return session.scalars(sa.select(StaffUser).where(StaffUser.username == username.strip().lower())).first()


def holders_count(session: Session, key: str) -> int:
    """Accounts holding the role, active or not."""
    return session.scalar(sa.select(sa.func.count()).where(StaffUserRole.role_key == key)) or 0


def roles_csv(rows: Collection[RoleRow]) -> str:
    """The roles shown, one column per permission (x where held), for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["role", "name", "built-in", "accounts", *(p.value for p in Permission)])
    for row in rows:
        writer.writerow(
            [
                formula_safe(row.role.key),
                formula_safe(row.role.name),
                "yes" if row.role.builtin else "no",
                row.members,
                *("x" if p in row.permissions else "" for p in Permission),
            ]
        )
    return out.getvalue()
