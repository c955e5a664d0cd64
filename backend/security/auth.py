"""Staff sign-in: argon2 passwords, TOTP, throttling, server-side sessions with idle and absolute expiry."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from backend.app.settings import PasswordSignIn, Settings
from backend.models import LoginAttempt, StaffSession, StaffUser
from backend.models.base import utcnow
from backend.security.permissions import needs_totp
from backend.services import audit

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a miss costs the same time as a hit. Made on
    first use, not at import: an argon2 hash costs most of a second of CPU, and every process that
    imports the web app (workers, command-line tools) would pay it, most without ever signing anyone in."""
    return _hasher.hash(secrets.token_urlsafe(16))


def warm() -> None:
    """Make the unknown-user hash before serving, so even the first miss costs what a hit costs."""
    _dummy_hash()


DEVICE_COOKIE = "cl_device"
DEVICE_COOKIE_DAYS = 180
DEVICE_USERS = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_allowed(settings: Settings, username: str) -> bool:
    """Whether `username` may sign in with a password: always, unless single sign-on has taken over and
    she is not one of the break-glass accounts."""
    if settings.password_sign_in is PasswordSignIn.ON:
        return True
    return username.strip().lower() in {name.strip().lower() for name in settings.break_glass_usernames}


class SignInRefused(Exception):
    """Sign-in failed. The message never says which part was wrong."""


@dataclass(frozen=True)
class NewSession:
    token: str  # goes in the cookie; only its hash is stored
    session: StaffSession


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lock_counters(session: Session, keys: list[str]) -> None:
    """Serialise sign-ins that share a username or an address, so concurrent tries cannot all pass the
    throttle (or spend one TOTP code) before any of them is recorded. PostgreSQL: transaction-scoped
    advisory locks, taken in one order so two sign-ins cannot deadlock; they end with the transaction.
    SQLite: the transaction already holds the database's write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(keys):
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})


def _wait_over(
    session: Session, settings: Settings, where: sa.ColumnElement[bool], threshold: int, now: datetime
) -> datetime | None:
    """When the next try may be checked, if it must wait: after `threshold` failures in the window the
    wait is `login_backoff_seconds`, doubling with every further failure, never longer than the
    window. Refused tries are not recorded, so hammering during a wait does not lengthen it."""
    since = now - timedelta(minutes=settings.login_window_minutes)
    failures, last = session.execute(
        sa.select(sa.func.count(), sa.func.max(LoginAttempt.at)).where(
            where, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since
        )
    ).one()
    if not failures or failures < threshold or last is None:
        return None
    exponent = min(failures - threshold, 20)
    wait = min(
        timedelta(seconds=settings.login_backoff_seconds * 2**exponent),
        timedelta(minutes=settings.login_window_minutes),
    )
    return last + wait if now < last + wait else None


def _throttled(
    session: Session, settings: Settings, username: str, ip: str, now: datetime, known_device: bool
) -> bool:
    """Usernames and addresses are throttled separately: one person's typos behind a shared address
    slow that person down, not everyone there. A browser that has signed in as this user before (its
    device cookie says so) is not held back by the username's failures, so nobody can keep an account
    locked from elsewhere; its address is still counted."""
    if _wait_over(session, settings, LoginAttempt.ip == ip, settings.login_max_failures_per_address, now):
        return True
    if known_device:
        return False
    last_success = session.scalar(
        sa.select(sa.func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username, LoginAttempt.succeeded.is_(True)
        )
    )
    mine = LoginAttempt.username == username
    if last_success is not None:
        mine = sa.and_(mine, LoginAttempt.at > last_success)
    return _wait_over(session, settings, mine, settings.login_max_failures, now) is not None


def _device_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="careloop-staff-device")


def _user_mark(settings: Settings, username: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"staff-device:" + username.encode(), hashlib.sha256).hexdigest()[:24]


def _device_marks(settings: Settings, cookie: str | None) -> list[str]:
    if not cookie:
        return []
    try:
        marks = _device_serializer(settings).loads(cookie, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return []
    return [m for m in marks if isinstance(m, str)] if isinstance(marks, list) else []


def is_known_device(settings: Settings, cookie: str | None, username: str) -> bool:
    """Whether this browser's device cookie says it has signed in as `username` before."""
    return _user_mark(settings, username.strip().lower()[:64]) in _device_marks(settings, cookie)


def device_cookie(settings: Settings, cookie: str | None, username: str) -> str:
    """The device cookie after a successful sign-in as `username` (a shared ward computer keeps the
    last few users)."""
    mark = _user_mark(settings, username.strip().lower()[:64])
    marks = [mark] + [m for m in _device_marks(settings, cookie) if m != mark]
    return str(_device_serializer(settings).dumps(marks[:DEVICE_USERS]))


def guard_sign_in(
    session: Session, settings: Settings, *, username: str, ip: str, now: datetime, known_device: bool
) -> None:
    """Serialise sign-ins sharing the username or the address, then raise SignInRefused (audited) while
    the throttle holds them back. Every way in with a password (here, LDAP) passes through it."""
    _lock_counters(session, [f"sign-in:user:{username}", f"sign-in:address:{ip}"])
    if _throttled(session, settings, username, ip, now, known_device):
        audit.record(session, "staff.sign_in_throttled", ip=ip, username=username)
        raise SignInRefused("throttled")


def totp_ok(session: Session, user: StaffUser, code: str, now: datetime) -> bool:
    """Her authenticator code (spent once), or True when her roles need none and she has none."""
    if not user.totp_secret:
        return not needs_totp(session, user.roles)
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
    known_device: bool = False,
    now: datetime | None = None,
) -> NewSession:
    now = now or utcnow()
    username = username.strip().lower()[:64]
    guard_sign_in(session, settings, username=username, ip=ip, now=now, known_device=known_device)
    # Locked for the rest of the transaction, and read afresh: the TOTP step another sign-in has just
    # accepted is seen, so a code is good once even when four sign-ins race with it.
    user = session.scalars(
        sa.select(StaffUser)
        .where(StaffUser.username == username)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active and totp_ok(session, user, totp_code, now)
    if ok and not password_allowed(settings, username):
        # the password was right, but this account signs in through the identity provider only
        audit.record(session, "staff.password_sign_in_off", staff_id=user.id if user else None, ip=ip)
        ok = False
    session.add(LoginAttempt(username=username, ip=ip, succeeded=ok, at=now))
    if not ok or user is None:
        audit.record(
            session, "staff.sign_in_failed", staff_id=user.id if user else None, ip=ip, username=username
        )
        raise SignInRefused("refused")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return open_session(session, user, ip=ip, now=now)


def do_second_factor(
    session: Session, settings: Settings, *, staff_id: int, code: str, ip: str, now: datetime | None = None
) -> NewSession:
    """The authenticator code asked after single sign-on (the provider did not show a second factor for a
    role that needs one). Throttled and spent once exactly as at the password sign-in."""
    now = now or utcnow()
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise SignInRefused("refused")
    username = user.username
    guard_sign_in(session, settings, username=username, ip=ip, now=now, known_device=False)
    user = session.scalars(
        sa.select(StaffUser)
        .where(StaffUser.id == staff_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    ok = user.active and bool(user.totp_secret) and totp_ok(session, user, code, now)
    session.add(LoginAttempt(username=username, ip=ip, succeeded=ok, at=now))
    if not ok:
        audit.record(
            session, "staff.sign_in_failed", staff_id=user.id, ip=ip, username=username, method="oidc"
        )
        raise SignInRefused("refused")
    return open_session(session, user, ip=ip, now=now, method="oidc+totp")


def open_session(
    session: Session, user: StaffUser, *, ip: str, now: datetime, method: str | None = None
) -> NewSession:
    """A new signed-in session for `user`, whose credentials the caller has checked (password and code
    here, the identity provider's ID token in backend/security/sso.py)."""
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
    via: dict[str, Any] = {"method": method} if method else {}
    audit.record(
        session, "staff.sign_in", staff_id=user.id, ip=ip, subject=("staff_session", staff_session.id), **via
    )
    return NewSession(token, staff_session)


def resume_session(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> StaffSession | None:
    """The live session for a cookie token, touched; None if unknown, ended, idle too long, or older than
    `session_max_hours` (activity keeps a session from idling out, never alive for good)."""
    now = now or utcnow()
    found = session.scalars(
        sa.select(StaffSession).where(StaffSession.token_hash == _token_hash(token))
    ).first()
    if found is None or found.ended_at is not None or not found.staff.active:
        return None
    if now - found.created_at > timedelta(hours=settings.session_max_hours):
        found.ended_at = now
        audit.record(
            session, "staff.session_expired", staff_id=found.staff_id, subject=("staff_session", found.id)
        )
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
