"""Staff sign-in: argon2 passwords, TOTP, throttling, server-side sessions with idle expiry."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.models import LoginAttempt, StaffSession, StaffUser
from backend.models.base import utcnow
from backend.services import audit

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class SignInRefused(Exception):
    """Sign-in failed. The message never says which part was wrong."""


@dataclass(frozen=True)
class NewSession:
    token: str  # goes in the cookie; only its hash is stored
    session: StaffSession


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _throttled(session: Session, settings: Settings, username: str, ip: str, now: datetime) -> bool:
    since = now - timedelta(minutes=settings.login_window_minutes)
    failures = session.scalar(
        sa.select(sa.func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at >= since,
            sa.or_(LoginAttempt.username == username, LoginAttempt.ip == ip),
        )
    )
    return (failures or 0) >= settings.login_max_failures


def _totp_ok(user: StaffUser, code: str, now: datetime) -> bool:
    if not user.totp_secret:
        return not user.role.requires_totp
    totp = pyotp.TOTP(user.totp_secret)
    code = "".join(code.split())
    for drift in (-1, 0, 1):  # one 30 s step either way for clock skew
        at = now + timedelta(seconds=30 * drift)
        step = totp.timecode(at)
        if secrets.compare_digest(totp.at(at), code) and (user.totp_last_step or -1) < step:
            user.totp_last_step = step  # a code is accepted once
            return True
    return False


def do_sign_in(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    totp_code: str,
    ip: str,
    now: datetime | None = None,
) -> NewSession:
    now = now or utcnow()
    username = username.strip().lower()[:64]
    if _throttled(session, settings, username, ip, now):
        audit.record(session, "staff.sign_in_throttled", ip=ip, username=username)
        raise SignInRefused("throttled")
    user = session.scalars(sa.select(StaffUser).where(StaffUser.username == username)).first()
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active and _totp_ok(user, totp_code, now)
    session.add(LoginAttempt(username=username, ip=ip, succeeded=ok, at=now))
    if not ok or user is None:
        audit.record(
            session, "staff.sign_in_failed", staff_id=user.id if user else None, ip=ip, username=username
        )
        raise SignInRefused("refused")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    token = secrets.token_urlsafe(32)
    staff_session = StaffSession(
        token_hash=_token_hash(token),
        staff_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        ip=ip,
    )
    session.add(staff_session)
    session.flush()
    audit.record(
        session, "staff.sign_in", staff_id=user.id, ip=ip, subject=("staff_session", staff_session.id)
    )
    return NewSession(token, staff_session)


def resume_session(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> StaffSession | None:
    """The live session for a cookie token, touched; None if unknown, ended or idle too long."""
    now = now or utcnow()
    found = session.scalars(
        sa.select(StaffSession).where(StaffSession.token_hash == _token_hash(token))
    ).first()
    if found is None or found.ended_at is not None or not found.staff.active:
        return None
    if now - found.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        found.ended_at = now
        audit.record(
            session,
            "staff.session_idle_timeout",
            staff_id=found.staff_id,
            subject=("staff_session", found.id),
        )
        return None
    found.last_seen_at = now
    return found


def do_sign_out(session: Session, staff_session: StaffSession, ip: str | None) -> None:
    staff_session.ended_at = utcnow()
    audit.record(
        session,
        "staff.sign_out",
        staff_id=staff_session.staff_id,
        ip=ip,
        subject=("staff_session", staff_session.id),
    )
