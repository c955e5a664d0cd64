"""Single sign-on's CareLoop side: the provider settings, and the verb that turns verified ID token claims
into a signed-in session (the username claim finds the account, the groups claim gives its role through
the configured mapping). Every refusal is audited with its reason, in the same transaction as any
change."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import people
from backend.app.settings import Settings, SsoSecondFactor, UnknownUsers
from backend.models import StaffRole, StaffUser
from backend.models.base import utcnow
from backend.security.auth import NewSession, hash_password, open_session
from backend.security.oidc import ProviderConfig, SsoReason, SsoRefused, claim, shows_second_factor
from backend.security.permissions import needs_totp
from backend.services import audit

CALLBACK_PATH = "/staff/sso/callback"


class CodeNeeded(Exception):
    """The provider signed her in, but her role needs a second factor the provider did not show: CareLoop
    asks for her own authenticator code before a session opens (`auth.do_second_factor`)."""

    def __init__(self, staff_id: int) -> None:
        super().__init__(staff_id)
        self.staff_id = staff_id


def provider_config(settings: Settings) -> ProviderConfig:
    if not settings.sso_enabled:
        raise SsoRefused(SsoReason.NOT_CONFIGURED)
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return ProviderConfig(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=secret,
        scopes=tuple(settings.oidc_scopes.split()),
        redirect_uri=settings.public_url + CALLBACK_PATH,
        timeout=settings.oidc_timeout_seconds,
    )


def record_refusal(session: Session, refused: SsoRefused, *, ip: str, username: str | None = None) -> None:
    """The audit row of a refused single sign-on (the reason code and a short technical detail; never a
    token or a claim's value beyond the username)."""
    staff_id = None
    if username:
        staff_id = session.scalar(sa.select(StaffUser.id).where(StaffUser.username == username))
    audit.record(
        session,
        "staff.sso_refused",
        staff_id=staff_id,
        ip=ip,
        reason=refused.reason.value,
        detail=refused.detail[:200],
        username=username,
    )


def _groups(claims: dict[str, Any], path: str) -> list[str]:
    value = claim(claims, path)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def mapped_role(settings: Settings, claims: dict[str, Any]) -> str | None:
    """The CareLoop role of the first configured group the user is in (the mapping's order decides
    when she is in several); None when none maps."""
    groups = set(_groups(claims, settings.oidc_groups_claim))
    return next((role for group, role in settings.oidc_group_roles.items() if group in groups), None)


def username_of(settings: Settings, claims: dict[str, Any]) -> str:
    value = claim(claims, settings.oidc_username_claim)
    if not isinstance(value, str) or not people.USERNAME.fullmatch(value.strip().lower()):
        raise SsoRefused(SsoReason.NO_USERNAME, f"claim {settings.oidc_username_claim!r} unusable")
    return value.strip().lower()


def do_sso_sign_in(
    session: Session, settings: Settings, claims: dict[str, Any], *, ip: str, now: datetime | None = None
) -> NewSession:
    """A session for the verified claims' account. Raises SsoRefused (the caller audits it with
    `record_refusal` and commits) when the account is unknown, inactive, or has no mapped role."""
    now = now or utcnow()
    username = username_of(settings, claims)
    role = mapped_role(settings, claims)
    if settings.oidc_group_roles and role is None:
        raise SsoRefused(SsoReason.NO_ROLE, "no group of the user's maps to a role")
    if role is not None and session.get(StaffRole, role) is None:
        raise SsoRefused(SsoReason.NO_ROLE, f"mapped role {role!r} does not exist")
    user = session.scalars(
        sa.select(StaffUser).where(StaffUser.username == username).with_for_update()
    ).first()
    if user is None:
        if settings.oidc_unknown_users is UnknownUsers.REFUSE:
            raise SsoRefused(SsoReason.UNKNOWN_USER)
        _create_disabled(session, settings, claims, username, role, ip)
        raise SsoRefused(SsoReason.ACCOUNT_CREATED_DISABLED)
    if not user.active:
        raise SsoRefused(SsoReason.ACCOUNT_DISABLED)
    if role is not None and user.role != role:
        _follow_provider_role(session, user, role, ip)
    if needs_totp(session, user.role) and not _second_factor_shown(settings, claims):
        if settings.oidc_admin_second_factor is SsoSecondFactor.PROVIDER or not user.totp_secret:
            raise SsoRefused(SsoReason.SECOND_FACTOR_MISSING, f"role {user.role!s} needs a second factor")
        raise CodeNeeded(user.id)
    return open_session(session, user, ip=ip, now=now, method="oidc")


def _second_factor_shown(settings: Settings, claims: dict[str, Any]) -> bool:
    mode = settings.oidc_admin_second_factor
    if mode is SsoSecondFactor.OFF:
        return True
    if mode is SsoSecondFactor.LOCAL:
        return False
    return shows_second_factor(claims, settings.oidc_mfa_acr_values)


def _follow_provider_role(session: Session, user: StaffUser, role: str, ip: str) -> None:
    """The provider's groups decide the role: the account takes the mapped one, audited with the reason.
    The last admin is not demoted by a group change: she keeps her role (and the row says why)."""
    if people.is_admin(session, user.role) and not people.is_admin(session, role):
        others = set(people.lock_admins(session)) - {user.id}
        if not others:
            audit.record(
                session,
                "staff.role_kept_last_admin",
                staff_id=user.id,
                ip=ip,
                role=str(user.role),
                mapped=role,
            )
            return
    people.take_role(session, user, role, by=None, ip=ip, reason="single sign-on group mapping")


def _create_disabled(
    session: Session, settings: Settings, claims: dict[str, Any], username: str, role: str | None, ip: str
) -> None:
    """An inactive account for an admin to check and activate; it cannot sign in until then, and has an
    unusable random password (a reset link sets one if password sign-in is wanted)."""
    name = claim(claims, "name")
    display = name.strip()[: people.MAX_NAME] if isinstance(name, str) and name.strip() else username
    chosen = role or settings.oidc_new_user_role
    if session.get(StaffRole, chosen) is None:
        raise SsoRefused(SsoReason.NO_ROLE, f"role {chosen!r} for new accounts does not exist")
    user = StaffUser(
        username=username,
        display_name=display,
        role=chosen,
        password_hash=hash_password(secrets.token_urlsafe(32)),
        language=settings.default_language,
        active=False,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        "staff.create",
        staff_id=None,
        subject=("staff_user", user.id),
        ip=ip,
        role=chosen,
        source="oidc",
    )
