"""Staff passwords: the policy (pure), and one-time links an admin issues for a new password.

A link's token is random and only its SHA-256 is stored; it expires after `password_reset_hours`, is
good once, and a newer link for the same person retires the older ones. Setting the password through it
ends every session of that person, so whoever held the old password is signed out too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.models import PasswordReset, StaffSession, StaffUser
from backend.models.base import utcnow
from backend.security.auth import hash_password
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason

MAX_PASSWORD = 256  # the forms' bound; argon2 hashes any length, but a request need not carry a book


def password_problems(password: str, *, username: str, min_length: int) -> list[Reason]:
    """What keeps `password` from being set, in the order a form shows them; empty when it is fine.
    A password containing the username (any case) is the first thing a guesser tries."""
    problems = []
    if len(password) < min_length:
        problems.append(Reason.PASSWORD_TOO_SHORT)
    if username and username.casefold() in password.casefold():
        problems.append(Reason.PASSWORD_HAS_USERNAME)
    return problems


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def end_sessions(session: Session, staff_id: int, now: datetime) -> int:
    """End every open session of a staff member at once (deactivated, new password, new TOTP)."""
    result = session.execute(
        sa.update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IssuedLink:
    token: str  # shown once, to the admin who issued it; never stored
    url: str
    expires_at: datetime


def do_issue_reset(
    session: Session, settings: Settings, *, staff: StaffUser, by: int, ip: str | None = None
) -> IssuedLink:
    now = utcnow()
    session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.staff_id == staff.id, PasswordReset.used_at.is_(None))
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.password_reset_hours)
    reset = PasswordReset(
        staff_id=staff.id, token_hash=_hash(token), created_by_staff_id=by, created_at=now, expires_at=expires
    )
    session.add(reset)
    session.flush()
    audit.record(
        session, "staff.password_link", staff_id=by, subject=("staff_user", staff.id), ip=ip, link=reset.id
    )
    return IssuedLink(token, f"{settings.public_url}/staff/password/{token}", expires)


def reset_for_token(session: Session, token: str, now: datetime | None = None) -> PasswordReset | None:
    """The usable link for `token`: unknown, used, expired, or for a deactivated account is None."""
    now = now or utcnow()
    if not token or len(token) > 128:
        return None
    found = session.scalars(
        sa.select(PasswordReset).where(PasswordReset.token_hash == _hash(token)).with_for_update()
    ).first()
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    user = session.get(StaffUser, found.staff_id)
    return found if user is not None and user.active else None


def do_set_password(
    session: Session,
    settings: Settings,
    *,
    token: str,
    password: str,
    repeated: str,
    ip: str | None = None,
) -> StaffUser:
    """Set the password through a one-time link; raises ActionRefused (the link stays usable when only
    the password was refused)."""
    now = utcnow()
    reset = reset_for_token(session, token, now)
    if reset is None:
        raise ActionRefused(Reason.RESET_LINK_INVALID)
    user = session.get(StaffUser, reset.staff_id)
    assert user is not None
    problems = password_problems(password, username=user.username, min_length=settings.password_min_length)
    if problems:
        raise ActionRefused(problems[0])
    if password != repeated:
        raise ActionRefused(Reason.PASSWORDS_DIFFER)
    user.password_hash = hash_password(password)
    reset.used_at = now
    ended = end_sessions(session, user.id, now)
    audit.record(
        session, "staff.password_set", staff_id=user.id, subject=("staff_user", user.id), ip=ip, ended=ended
    )
    return user
