"""Staff sign-in against LDAP / Active Directory: the directory checks the password, CareLoop the
authenticator code where her roles need one (the same rule as the local sign-in), and her roles and
departments follow her directory groups at every sign-in. Throttled and recorded exactly as the local
sign-in is; every refusal is audited with its reason.

When LDAP is on, the directory decides every password except those of the break-glass accounts
(CARELOOP_BREAK_GLASS_USERNAMES), which keep their local password: they are how administrators get in
while the directory is down. A local password never stands in for a directory one (someone removed from
the directory must not get in with an old local password)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import people
from backend.admin.passwords import end_sessions
from backend.app.settings import Settings
from backend.models import Department, LoginAttempt, StaffUser
from backend.models.base import utcnow
from backend.security.auth import (
    NewSession,
    SignInRefused,
    guard_sign_in,
    hash_password,
    open_session,
    totp_ok,
)
from backend.security.ldap_directory import (
    DirectoryConfig,
    DirectoryReason,
    DirectoryRefused,
    DirectoryUser,
    authenticate,
    config_from,
    normalise_dn,
)
from backend.security.permissions import needs_totp
from backend.security.sso import follow_mapped_roles, roles_from_groups
from backend.services import audit
from backend.services.refusal import ActionRefused

SOURCE = "LDAP group mapping"
Lookup = Callable[[DirectoryConfig, str, str], DirectoryUser]


class DirectoryUnavailable(SignInRefused):
    """No directory server could be asked: the page says so (a password problem it is not), and the
    break-glass accounts still sign in with their local passwords."""


def uses_directory(settings: Settings, username: str) -> bool:
    """Whether `username`'s password is the directory's (LDAP on, and not a break-glass account)."""
    if not settings.ldap_enabled:
        return False
    return username.strip().lower() not in {n.strip().lower() for n in settings.break_glass_usernames}


def _refuse(
    session: Session,
    *,
    username: str,
    ip: str,
    now: datetime,
    reason: str,
    user: StaffUser | None = None,
    counts: bool = True,
) -> SignInRefused:
    """Record the refusal (a failed attempt for the throttle when it `counts`) and the exception to raise."""
    if counts:
        session.add(LoginAttempt(username=username, ip=ip, succeeded=False, at=now))
    staff_id = user.id if user is not None else None
    audit.record(
        session,
        "staff.sign_in_failed",
        staff_id=staff_id,
        ip=ip,
        username=username,
        method="ldap",
        reason=reason,
    )
    return SignInRefused(reason)


def do_ldap_sign_in(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    totp_code: str,
    ip: str,
    known_device: bool = False,
    now: datetime | None = None,
    lookup: Lookup = authenticate,
) -> NewSession:
    """A session for the directory user whose password this is. Raises SignInRefused (the caller commits:
    the failed attempt and its audit row stay), or DirectoryUnavailable when no server answered."""
    now = now or utcnow()
    username = username.strip().lower()[:64]
    guard_sign_in(session, settings, username=username, ip=ip, now=now, known_device=known_device)
    if not password:
        # never sent: an empty password is an unauthenticated bind that many directories accept
        raise _refuse(session, username=username, ip=ip, now=now, reason=DirectoryReason.EMPTY_PASSWORD)
    if not people.USERNAME.fullmatch(username):
        raise _refuse(session, username=username, ip=ip, now=now, reason=DirectoryReason.UNKNOWN_USER)
    try:
        found = lookup(config_from(settings), username, password)
    except DirectoryRefused as refused:
        if refused.reason is DirectoryReason.UNAVAILABLE:
            audit.record(
                session, "staff.ldap_unavailable", ip=ip, username=username, detail=refused.detail[:300]
            )
            raise DirectoryUnavailable("directory unavailable") from refused
        raise _refuse(session, username=username, ip=ip, now=now, reason=refused.reason) from refused
    user = session.scalars(
        sa.select(StaffUser)
        .where(StaffUser.username == username)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    roles = roles_from_groups(
        {normalise_dn(g): r for g, r in settings.ldap_group_roles.items()}, found.groups
    )
    if not roles:
        # removed from every mapped group: no way in, and whatever she still had open ends now
        if user is not None:
            ended = end_sessions(session, user.id, now)
            audit.record(session, "staff.ldap_no_role", staff_id=user.id, ip=ip, sessions_ended=ended)
        raise _refuse(session, username=username, ip=ip, now=now, reason="no_role", user=user)
    try:
        people.check_roles(session, roles)
    except ActionRefused:
        # the mapping names a role the database lacks: a settings fault, refused and recorded
        raise _refuse(
            session, username=username, ip=ip, now=now, reason="mapped_role_missing", user=user
        ) from None
    departments = _mapped_departments(session, settings, found)
    if user is None:
        if not settings.ldap_create_users:
            raise _refuse(session, username=username, ip=ip, now=now, reason="no_account")
        user = _create(session, settings, username, found, roles, departments, ip)
    if not user.active:
        raise _refuse(session, username=username, ip=ip, now=now, reason="account_disabled", user=user)
    follow_mapped_roles(session, user, roles, ip=ip, source=SOURCE)
    if departments is not None:
        _follow_departments(session, user, departments, ip)
    if needs_totp(session, user.roles) and not user.totp_secret:
        # an administrator without an enrolled authenticator: an admin must enrol one first
        raise _refuse(
            session, username=username, ip=ip, now=now, reason="second_factor_not_enrolled", user=user
        )
    if not totp_ok(session, user, totp_code, now):
        raise _refuse(session, username=username, ip=ip, now=now, reason="bad_code", user=user)
    session.add(LoginAttempt(username=username, ip=ip, succeeded=True, at=now))
    return open_session(session, user, ip=ip, now=now, method="ldap")


def _mapped_departments(
    session: Session, settings: Settings, found: DirectoryUser
) -> list[Department] | None:
    """Her departments by her groups; None when no department mapping is set (CareLoop manages them)."""
    if not settings.ldap_group_departments:
        return None
    codes = {code for dn, code in settings.ldap_group_departments.items() if normalise_dn(dn) in found.groups}
    if not codes:
        return []
    return list(
        session.scalars(sa.select(Department).where(Department.code.in_(codes)).order_by(Department.id))
    )


def _follow_departments(session: Session, user: StaffUser, departments: list[Department], ip: str) -> None:
    before = sorted(d.code for d in user.departments)
    after = sorted(d.code for d in departments)
    if before == after:
        return
    user.departments = departments
    user.version += 1
    audit.record(
        session,
        "staff.departments_synced",
        staff_id=None,
        subject=("staff_user", user.id),
        ip=ip,
        before=before,
        after=after,
        reason=SOURCE,
    )


def _create(
    session: Session,
    settings: Settings,
    username: str,
    found: DirectoryUser,
    roles: frozenset[str],
    departments: list[Department] | None,
    ip: str,
) -> StaffUser:
    """Her account, made just in time: active, with her directory name, roles and departments, and an
    unusable random local password (the directory keeps hers)."""
    user = StaffUser(
        username=username,
        display_name=found.name.strip()[: people.MAX_NAME] or username,
        roles=set(roles),
        password_hash=hash_password(secrets.token_urlsafe(32)),
        language=settings.default_language,
        departments=departments or [],
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        "staff.create",
        staff_id=None,
        subject=("staff_user", user.id),
        ip=ip,
        roles=people.role_text(roles),
        departments=[d.id for d in user.departments],
        source="ldap",
    )
    return user
