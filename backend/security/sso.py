"""Single sign-on's CareLoop side: the provider settings, and the verb that turns verified ID token claims
into a signed-in session (the username claim finds the account, the groups claim gives its roles through
the configured mapping: every group she is in that maps adds its role). Every refusal is audited with
its reason, in the same transaction as any change."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
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
    """The provider signed her in, but her roles need a second factor the provider did not show: CareLoop
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


def roles_from_groups(mapping: Mapping[str, str], groups: Iterable[str]) -> frozenset[str]:
    """The CareLoop roles of every mapped group among `groups` (a head nurse in the nurses' and the
    managers' groups holds both); empty when none maps. Single sign-on and LDAP share it."""
    held = set(groups)
    return frozenset(role for group, role in mapping.items() if group in held)


def mapped_roles(settings: Settings, claims: dict[str, Any]) -> frozenset[str]:
    return roles_from_groups(settings.oidc_group_roles, _groups(claims, settings.oidc_groups_claim))


def check_mapped_roles(session: Session, roles: AbstractSet[str]) -> None:
    """Refuse a mapping that names a role the database does not have (a typo in the settings)."""
    missing = sorted(role for role in roles if session.get(StaffRole, role) is None)
    if missing:
        raise SsoRefused(SsoReason.NO_ROLE, f"mapped roles {missing!r} do not exist")


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
    roles = mapped_roles(settings, claims)
    if settings.oidc_group_roles and not roles:
        raise SsoRefused(SsoReason.NO_ROLE, "no group of the user's maps to a role")
    check_mapped_roles(session, roles)
    user = session.scalars(
        sa.select(StaffUser).where(StaffUser.username == username).with_for_update()
    ).first()
    if user is None:
        if settings.oidc_unknown_users is UnknownUsers.REFUSE:
            raise SsoRefused(SsoReason.UNKNOWN_USER)
        _create_disabled(session, settings, claims, username, roles, ip)
        raise SsoRefused(SsoReason.ACCOUNT_CREATED_DISABLED)
    if not user.active:
        raise SsoRefused(SsoReason.ACCOUNT_DISABLED)
    if roles:
        follow_mapped_roles(session, user, roles, ip=ip, source="single sign-on group mapping")
    if needs_totp(session, user.roles) and not _second_factor_shown(settings, claims):
        if settings.oidc_admin_second_factor is SsoSecondFactor.PROVIDER or not user.totp_secret:
            detail = f"roles {people.role_text(user.roles)} need a second factor"
            raise SsoRefused(SsoReason.SECOND_FACTOR_MISSING, detail)
        raise CodeNeeded(user.id)
    return open_session(session, user, ip=ip, now=now, method="oidc")


def _second_factor_shown(settings: Settings, claims: dict[str, Any]) -> bool:
    mode = settings.oidc_admin_second_factor
    if mode is SsoSecondFactor.OFF:
        return True
    if mode is SsoSecondFactor.LOCAL:
        return False
    return shows_second_factor(claims, settings.oidc_mfa_acr_values)


def follow_mapped_roles(
    session: Session, user: StaffUser, roles: AbstractSet[str], *, ip: str, source: str
) -> None:
    """The directory's groups decide the roles (single sign-on, LDAP): the account takes the mapped set,
    audited with `source` as the reason; nothing is written when they are the same. The last admin is
    not demoted by a group change: she keeps her roles (and the row says why)."""
    if frozenset(user.roles) == roles:
        return
    if people.is_admin(session, user.roles) and not people.is_admin(session, roles):
        others = set(people.lock_admins(session)) - {user.id}
        if not others:
            audit.record(
                session,
                "staff.role_kept_last_admin",
                staff_id=user.id,
                ip=ip,
                roles=people.role_text(user.roles),
                mapped=people.role_text(roles),
            )
            return
    people.take_roles(session, user, roles, by=None, ip=ip, reason=source)


def _create_disabled(
    session: Session,
    settings: Settings,
    claims: dict[str, Any],
    username: str,
    roles: AbstractSet[str],
    ip: str,
) -> None:
    """An inactive account for an admin to check and activate; it cannot sign in until then, and has an
    unusable random password (a reset link sets one if password sign-in is wanted)."""
    name = claim(claims, "name")
    display = name.strip()[: people.MAX_NAME] if isinstance(name, str) and name.strip() else username
    chosen = set(roles) or {settings.oidc_new_user_role}
    if any(session.get(StaffRole, role) is None for role in chosen):
        raise SsoRefused(SsoReason.NO_ROLE, f"roles {sorted(chosen)!r} for new accounts do not all exist")
    user = StaffUser(
        username=username,
        display_name=display,
        roles=chosen,
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
        roles=people.role_text(chosen),
        source="oidc",
    )
