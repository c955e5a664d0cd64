"""What a staff member may do: the closed set of permissions, the built-in roles' defaults, and the one
check every route and service asks (`may`). Roles are rows (`staff_roles`), so a hospital can change
what a built-in role holds or add its own; department scoping is a permission too
(`patients.all_departments`), applied by the services' queries as before. A staff member holds a set of
roles; what she may do is the union of what they hold."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Role, StaffRole, StaffUser, StaffUserRole, staff_role_permissions


class Permission(StrEnum):
    """One thing the code checks. Adding one means checking it somewhere: a permission nothing checks
    would be a promise the roles page cannot keep."""

    ADMIN_STAFF = "admin.staff"  # staff accounts, roles and who holds them
    ADMIN_ORG = "admin.org"  # departments, wards, doctors and nurses
    ADMIN_SETTINGS = "admin.settings"  # system health, effective settings
    AUDIT_READ = "audit.read"  # the audit log
    PATIENTS_ALL_DEPARTMENTS = "patients.all_departments"  # else only her departments' patients
    PATIENTS_EXCLUSIONS = "patients.exclusions"  # deceased, dispute, invalid contact, frequent visitor
    PATIENTS_DO_NOT_DISTURB = "patients.do_not_disturb"
    SAFETY_REVIEW = "safety.review"  # review messages marked as missed escalations
    TASKS_SUPERVISE = "tasks.supervise"  # receives her departments' tasks that breach their time
    SLA_MANAGE = "sla.manage"  # response times per department
    SPOT_CHECKS = "spot_checks.manage"
    OUTREACH = "outreach.manage"  # outreach batches: create, approve, send
    WORK_ALL = "work.view_all"  # everyone's long work (else her own)
    FLOWS_VIEW = "flows.view"  # flows' drop-off and the simulator
    QUESTIONNAIRE_IMPORT = "questionnaires.import"  # import (and publish) a FHIR Questionnaire
    CONTENT_EDIT = "content.edit"  # the content studio: drafts and reviews
    CONTENT_APPROVE = "content.approve"  # approve others' clinical revisions (also granted per person)
    INTEGRATION = "integration.manage"  # HL7 message log, reprocessing, code mappings
    IMPORTS = "imports.run"  # file imports of patients and encounters
    PRIVACY_DECIDE = "privacy.decide"  # decide patients' data-rights requests; review break-glass access
    PRIVACY_REPORT = "privacy.access_report"  # read who viewed a patient's record


P = Permission
_EVERYONE = frozenset({P.PATIENTS_DO_NOT_DISTURB})
_SERVICE_CENTRE = _EVERYONE | {P.PATIENTS_ALL_DEPARTMENTS, P.PATIENTS_EXCLUSIONS, P.SAFETY_REVIEW}
_EDITING = frozenset({P.FLOWS_VIEW, P.QUESTIONNAIRE_IMPORT})
_MANAGING = frozenset({P.SLA_MANAGE, P.SPOT_CHECKS, P.OUTREACH, P.WORK_ALL})

# What each built-in role holds when the database is created (the migration seeds these rows).
BUILTIN: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission) - {P.TASKS_SUPERVISE, P.CONTENT_APPROVE},
    Role.SERVICE_AGENT: _SERVICE_CENTRE,
    Role.DOCTOR: _EVERYONE,
    Role.NURSE: _EVERYONE,
    Role.CONTENT_EDITOR: _EDITING | {P.CONTENT_EDIT},
    Role.MANAGER: _SERVICE_CENTRE | _EDITING | _MANAGING | {P.TASKS_SUPERVISE, P.PRIVACY_REPORT},
    Role.INTEGRATION: frozenset({P.INTEGRATION, P.IMPORTS}),
    # the data protection officer PIPL and Decree 13 ask for: answers requests, reviews break-glass, reads
    # the audit log, and finds any patient's record to do so
    Role.PRIVACY_OFFICER: _EVERYONE
    | {P.PRIVACY_DECIDE, P.PRIVACY_REPORT, P.AUDIT_READ, P.PATIENTS_ALL_DEPARTMENTS},
}

# Holding any of these makes an administrator: the role needs a second factor at local sign-in.
ADMINISTRATIVE = frozenset({P.ADMIN_STAFF, P.ADMIN_ORG, P.ADMIN_SETTINGS, P.AUDIT_READ})
# The permission that must always have an active holder: without it nobody could repair the roles.
KEEPER = P.ADMIN_STAFF

_CACHE = "careloop.role_permissions"


def _cache(session: Session) -> dict[str, frozenset[Permission]]:
    cache: dict[str, frozenset[Permission]] = session.info.setdefault(_CACHE, {})
    return cache


def forget(session: Session) -> None:
    """Drop this session's cached role permissions (after a role's permissions changed)."""
    session.info.pop(_CACHE, None)


def permissions_of(session: Session, role: str) -> frozenset[Permission]:
    """The permissions `role` holds, read once per database session (one request, one job)."""
    cache = _cache(session)
    if role not in cache:
        names = session.scalars(
            sa.select(staff_role_permissions.c.permission).where(staff_role_permissions.c.role_key == role)
        )
        cache[role] = frozenset(Permission(n) for n in names if n in Permission.__members__.values())
    return cache[role]


def permissions_of_roles(session: Session, roles: AbstractSet[str]) -> frozenset[Permission]:
    """The union of what `roles` hold (a set, never a single key: a str would be read letter by letter)."""
    held: frozenset[Permission] = frozenset()
    for role in roles:
        held |= permissions_of(session, role)
    return held


def granted(user: StaffUser) -> frozenset[Permission]:
    """Everything `user` may do: the union of her roles' permissions, and content approval where it was
    granted to her in person. Nothing for a deactivated account. Her roles are read with her row, once per
    request, so a change of roles takes effect at her next request without ending her sessions."""
    if not user.active:
        return frozenset()
    session = sa.orm.object_session(user)
    if session is None:
        raise RuntimeError("the staff member's row is not attached to a database session")
    held = permissions_of_roles(session, user.roles)
    return held | {P.CONTENT_APPROVE} if user.content_approver else held


def may(user: StaffUser, permission: Permission) -> bool:
    """The one answer to "may this staff member do X"."""
    return permission in granted(user)


def needs_totp(session: Session, roles: AbstractSet[str]) -> bool:
    """Administrators sign in locally with a second factor (single sign-on leaves it to the provider):
    any of her roles being administrative is enough."""
    return bool(permissions_of_roles(session, roles) & ADMINISTRATIVE)


def holders(permission: Permission) -> sa.ColumnElement[bool]:
    """A condition on StaffUser: one of her roles holds `permission` (for queries such as "the
    department's supervisor" or "who may review"), the same answer `may` gives one by one."""
    roles = sa.select(staff_role_permissions.c.role_key).where(
        staff_role_permissions.c.permission == permission.value
    )
    return StaffUser.id.in_(sa.select(StaffUserRole.staff_id).where(StaffUserRole.role_key.in_(roles)))


def holding(role: str) -> sa.ColumnElement[bool]:
    """A condition on StaffUser: she holds `role` (the staff list's filter, a role's member count)."""
    return StaffUser.role_grants.any(StaffUserRole.role_key == role)


def seed_builtin_roles(connection: sa.Connection) -> None:
    """Insert the built-in roles and their default permissions that are missing (the migration runs
    this; so does anything that empties the tables and wants a working database back)."""
    present = set(connection.scalars(sa.select(StaffRole.key)))
    for role, permissions in BUILTIN.items():
        if role.value in present:
            continue
        connection.execute(
            sa.insert(StaffRole).values(key=role.value, name=role.value, builtin=True, version=1)
        )
        write_permissions(connection, role.value, permissions)


def write_permissions(
    connection: sa.Connection | Session, role: str, permissions: Iterable[Permission]
) -> None:
    """Replace the permission rows of `role`."""
    connection.execute(sa.delete(staff_role_permissions).where(staff_role_permissions.c.role_key == role))
    rows = [{"role_key": role, "permission": p.value} for p in sorted(set(permissions))]
    if rows:
        connection.execute(sa.insert(staff_role_permissions), rows)
