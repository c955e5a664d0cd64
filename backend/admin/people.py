"""Staff accounts: the list an admin filters and exports, and the verbs that create, edit, deactivate,
reactivate and re-enrol them (each audited in the same transaction).

Every edit raises the account's `version`; a form carries the version it showed, and a save over a
version it has not seen is refused (EDITED_MEANWHILE) so a second admin never undoes the first one's
change unseen. An account holds a set of roles (at least one); its permissions are their union. The last
active admin (the last holder of the permission to manage staff and roles) can be neither deactivated nor
left with roles that lack it; a change of roles needs a reason, which the audit row keeps. A change of
roles does not end her sessions: her roles are read afresh at every request (permissions.granted).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyotp
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from backend.admin.passwords import end_sessions
from backend.models import Department, StaffRole, StaffUser
from backend.models.base import utcnow
from backend.models.staff import role_key
from backend.security.auth import hash_password
from backend.security.identifiers import InvalidEmail, InvalidPhoneNumber, normalise_email, normalise_phone
from backend.security.permissions import KEEPER, holders, holding, needs_totp, permissions_of_roles
from backend.services import audit
from backend.services.message_log import InvalidFilter, parse_id, text_value
from backend.services.refusal import ActionRefused, Reason
from bots.domain import LANGUAGES

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MAX_NAME = 200
MAX_REASON = 500


# --- the form ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffForm:
    """What an admin may set on an account (the username only when creating it)."""

    username: str
    display_name: str
    roles: frozenset[str]  # staff_roles keys (at least one), checked by the verbs
    department_ids: tuple[int, ...]
    language: str
    phone: str | None  # E.164; None clears it
    reason: str = ""  # why the roles change (needed when they do)
    email: str | None = None  # normalised; None keeps the account's, "" clears it


def parse_roles(keys: Sequence[str]) -> frozenset[str]:
    """The ticked roles: at least one, each a plausible key (the verbs check they exist)."""
    chosen = frozenset(key.strip() for key in keys)
    if not chosen or any(not key or len(key) > 32 for key in chosen) or len(chosen) > 32:
        raise ActionRefused(Reason.UNKNOWN_ROLE)
    return frozenset(role_key(key) for key in chosen)


def parse_staff_form(
    values: Mapping[str, str],
    department_ids: Sequence[str],
    *,
    roles: Sequence[str],
    default_region: str,
) -> StaffForm:
    """The form's values, checked; raises ActionRefused naming the first that does not fit."""
    username = values.get("username", "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise ActionRefused(Reason.USERNAME_INVALID)
    name = values.get("display_name", "").strip()
    if not name or len(name) > MAX_NAME:
        raise ActionRefused(Reason.NAME_REQUIRED)
    chosen = parse_roles(roles)
    language = values.get("language", "")
    if language not in LANGUAGES:
        raise ActionRefused(Reason.UNKNOWN_LANGUAGE)
    ids = []
    for text in department_ids:
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
        ids.append(int(text))
    raw_phone = values.get("phone", "").strip()
    try:
        phone = normalise_phone(raw_phone, default_region) if raw_phone else None
    except InvalidPhoneNumber as exc:
        raise ActionRefused(Reason.PHONE_INVALID) from exc
    reason = values.get("reason", "").strip()[:MAX_REASON]
    email = None  # a form without the field keeps the account's
    if "email" in values:
        raw_email = values["email"].strip()
        try:
            email = normalise_email(raw_email) if raw_email else ""  # "" clears it
        except InvalidEmail as exc:
            raise ActionRefused(Reason.EMAIL_INVALID) from exc
    return StaffForm(username, name, chosen, tuple(sorted(set(ids))), language, phone, reason, email)


def check_roles(session: Session, roles: AbstractSet[str]) -> None:
    """Refuse an empty set, or a role that is not a row of staff_roles."""
    if not roles or any(session.get(StaffRole, role) is None for role in roles):
        raise ActionRefused(Reason.UNKNOWN_ROLE)


def _departments(session: Session, ids: tuple[int, ...]) -> list[Department]:
    found = list(session.scalars(sa.select(Department).where(Department.id.in_(ids)))) if ids else []
    if len(found) != len(ids):
        raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    return found


def locked(session: Session, staff_id: int) -> StaffUser:
    """The account, locked for the edit. The active admins' rows are locked first, always in id order:
    two admins demoting each other lock the same rows in the same order, so one waits for the other
    (and then sees her change) instead of the two deadlocking."""
    lock_admins(session)
    user = session.scalars(
        sa.select(StaffUser)
        .where(StaffUser.id == staff_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if user is None:
        raise ActionRefused(Reason.NO_SUCH_STAFF)
    return user


def _check_version(user: StaffUser, version: int) -> None:
    if user.version != version:
        raise ActionRefused(Reason.EDITED_MEANWHILE)


def lock_admins(session: Session) -> list[int]:
    return list(
        session.scalars(
            sa.select(StaffUser.id)
            .where(holders(KEEPER), StaffUser.active.is_(True))
            .order_by(StaffUser.id)
            .with_for_update()
        )
    )


def keep_an_admin(session: Session, user: StaffUser) -> None:
    """Refuse to leave no active admin once `user` stops being one (the rows are locked by `locked`)."""
    if not set(lock_admins(session)) - {user.id}:
        raise ActionRefused(Reason.LAST_ADMIN)


def is_admin(session: Session, roles: AbstractSet[str]) -> bool:
    """Whether one of `roles` holds the permission that must never be left without an active holder."""
    return KEEPER in permissions_of_roles(session, roles)


def role_text(roles: AbstractSet[str]) -> list[str]:
    """Roles as the audit rows keep them: plain keys, sorted."""
    return sorted(str(role) for role in roles)


# --- verbs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    user: StaffUser
    totp_secret: str | None  # shown once to enrol the authenticator; None when no TOTP is required


def take_roles(
    session: Session,
    user: StaffUser,
    roles: AbstractSet[str],
    *,
    by: int | None,
    ip: str | None,
    reason: str,
) -> None:
    """The account now holds exactly `roles`, audited as `staff.role_assign` with the roles before and the
    reason. The callers have made their checks (the roles exist, the last admin keeps one)."""
    before = role_text(user.roles)
    user.roles = {role_key(r) for r in roles}
    user.version += 1
    audit.record(
        session,
        "staff.role_assign",
        staff_id=by,
        subject=("staff_user", user.id),
        ip=ip,
        roles=role_text(roles),
        roles_before=before,
        reason=reason,
    )


def do_create_staff(
    session: Session,
    *,
    form: StaffForm,
    password: str | None,
    totp: bool = False,
    by: int | None,
    ip: str | None = None,
) -> Created:
    """A new account. Without a password (the admin console) it gets an unusable random one, and the
    admin issues a one-time link to set it. Admins always get a TOTP secret."""
    if session.scalar(sa.select(StaffUser.id).where(StaffUser.username == form.username)) is not None:
        raise ActionRefused(Reason.USERNAME_TAKEN)
    check_roles(session, form.roles)
    secret = pyotp.random_base32() if needs_totp(session, form.roles) or totp else None
    user = StaffUser(
        username=form.username,
        display_name=form.display_name,
        roles=set(form.roles),
        password_hash=hash_password(password or secrets.token_urlsafe(32)),
        totp_secret=secret,
        language=form.language,
        phone=form.phone,
        email=form.email or None,
        departments=_departments(session, form.department_ids),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        "staff.create",
        staff_id=by,
        subject=("staff_user", user.id),
        ip=ip,
        roles=role_text(form.roles),
        departments=list(form.department_ids),
    )
    return Created(user, secret)


def do_update_staff(
    session: Session, *, staff_id: int, version: int, form: StaffForm, by: int | None, ip: str | None = None
) -> str | None:
    """Name, roles, departments, language and phone (the username stays). Returns the new TOTP secret
    when the new roles need one the account did not have (shown once, to enrol), else None."""
    user = locked(session, staff_id)
    _check_version(user, version)
    before_roles = frozenset(user.roles)
    role_changes = before_roles != form.roles
    if role_changes:
        check_roles(session, form.roles)
        if not form.reason:
            raise ActionRefused(Reason.ROLE_REASON_REQUIRED)
    if role_changes and user.active and is_admin(session, before_roles) and not is_admin(session, form.roles):
        keep_an_admin(session, user)
    role_change: dict[str, Any] = (
        {"roles_before": role_text(before_roles), "reason": form.reason} if role_changes else {}
    )
    changed = sorted(
        name
        for name, before, after in (
            ("display_name", user.display_name, form.display_name),
            ("roles", before_roles, form.roles),
            ("departments", tuple(sorted(d.id for d in user.departments)), form.department_ids),
            ("language", user.language, form.language),
            ("phone", user.phone, form.phone),
            ("email", user.email, (form.email or None) if form.email is not None else user.email),
        )
        if before != after
    )
    if form.email is not None:
        user.email = form.email or None
    user.departments = _departments(session, form.department_ids)
    if role_changes:
        user.roles = set(form.roles)
    user.display_name, user.language, user.phone = form.display_name, form.language, form.phone
    secret = None
    if needs_totp(session, form.roles) and not user.totp_secret:
        secret = user.totp_secret = pyotp.random_base32()
        changed.append("totp")
    user.version += 1
    audit.record(
        session,
        "staff.update",
        staff_id=by,
        subject=("staff_user", user.id),
        ip=ip,
        changed=changed,
        roles=role_text(form.roles),
        **role_change,
    )
    return secret


def do_set_active(
    session: Session, *, staff_id: int, version: int, active: bool, by: int | None, ip: str | None = None
) -> int:
    """Deactivate (every session ends at once, sign-in refused) or reactivate; the sessions ended."""
    user = locked(session, staff_id)
    _check_version(user, version)
    ended = 0
    if not active and user.active:
        if is_admin(session, user.roles):
            keep_an_admin(session, user)
        ended = end_sessions(session, user.id, utcnow())
    user.active = active
    user.version += 1
    action = "staff.reactivate" if active else "staff.deactivate"
    audit.record(session, action, staff_id=by, subject=("staff_user", user.id), ip=ip, sessions_ended=ended)
    return ended


def do_reset_totp(session: Session, *, staff_id: int, version: int, by: int, ip: str | None = None) -> str:
    """A new TOTP secret (the old authenticator stops working, open sessions end): shown once to the
    admin, who hands it to its owner to enrol again."""
    user = locked(session, staff_id)
    _check_version(user, version)
    user.totp_secret = pyotp.random_base32()
    user.totp_last_step = None
    user.version += 1
    ended = end_sessions(session, user.id, utcnow())
    audit.record(
        session, "staff.totp_reset", staff_id=by, subject=("staff_user", user.id), ip=ip, sessions_ended=ended
    )
    return user.totp_secret


def provisioning_uri(user: StaffUser, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name="CareLoop")


# --- the list ------------------------------------------------------------------------------------

LIST_FIELDS = ("role", "department", "active", "q")


@dataclass(frozen=True)
class StaffFilters:
    role: str | None = None
    department_id: int | None = None
    active: bool | None = None
    text: str = ""  # part of a username or display name

    def audit_detail(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "department": self.department_id,
            "active": self.active,
            "text": bool(self.text),
        }


def parse_staff_filters(values: Mapping[str, str]) -> StaffFilters:
    active_text = text_value(values, "active")
    if active_text not in ("", "yes", "no"):
        raise InvalidFilter("active")
    return StaffFilters(
        role=text_value(values, "role")[:32] or None,
        department_id=parse_id(values, "department"),
        active=None if not active_text else active_text == "yes",
        text=text_value(values, "q"),
    )


@dataclass(frozen=True)
class StaffRow:
    user: StaffUser
    last_sign_in: datetime | None


def staff_list(session: Session, filters: StaffFilters, limit: int = 2000) -> list[StaffRow]:
    """Accounts by username with their departments and roles, in three statements whatever their number.
    The role filter keeps an account holding that role among others."""
    query = (
        sa.select(StaffUser)
        .options(selectinload(StaffUser.departments), selectinload(StaffUser.role_grants))
        .order_by(StaffUser.username)
    )
    if filters.role is not None:
        query = query.where(holding(filters.role))
    if filters.active is not None:
        query = query.where(StaffUser.active.is_(filters.active))
    if filters.department_id is not None:
        query = query.where(StaffUser.departments.any(Department.id == filters.department_id))
    if filters.text:
        query = query.where(
            sa.or_(
                StaffUser.username.icontains(filters.text, autoescape=True),
                StaffUser.display_name.icontains(filters.text, autoescape=True),
            )
        )
    return [StaffRow(user, user.last_login_at) for user in session.scalars(query.limit(limit))]


def do_set_own_language(session: Session, *, user: StaffUser, language: str, ip: str | None = None) -> bool:
    """The staff member picked the language of her pages: kept on her account, so it follows her to any
    device she signs in on. Raises the version like an admin's edit, so an admin's form showing the old
    language cannot quietly put it back. Returns whether it changed."""
    if language not in LANGUAGES:
        raise ActionRefused(Reason.NO_SUCH_LANGUAGE)
    if user.language == language:
        return False
    before, user.language = user.language, language
    user.version += 1
    audit.record(
        session,
        "staff.language",
        staff_id=user.id,
        subject=("staff_user", user.id),
        ip=ip,
        before=before,
        after=language,
    )
    return True
