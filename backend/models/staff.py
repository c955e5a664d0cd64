"""Staff users, their roles (built-in and configured, each a set of permissions; a user holds several) and
departments, sign-in sessions and attempts, and their home-page layout."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, EncryptedText, UTCDateTime, utcnow

if TYPE_CHECKING:
    from backend.models.org import Department


class Role(StrEnum):
    """The built-in roles. Each is a row of `staff_roles` whose permissions an admin may change; an
    admin may add roles of her own beside them (backend/security/permissions.py answers what a role
    may do)."""

    ADMIN = "admin"
    SERVICE_AGENT = "service_agent"  # the service centre: sees every department
    DOCTOR = "doctor"
    NURSE = "nurse"
    CONTENT_EDITOR = "content_editor"
    MANAGER = "manager"
    INTEGRATION = "integration"  # the hospital data feed: HL7 message log, reprocessing, code mappings
    PRIVACY_OFFICER = "privacy_officer"  # patients' data-rights requests, break-glass review, access reports


class RoleKey(sa.TypeDecorator[str]):
    """A role a staff member holds: the key of a `staff_roles` row. A built-in key reads back as its `Role`
    member (a str), so `Role.ADMIN in user.roles` keeps working; a configured role's key reads back as the
    plain string."""

    impl = sa.String(32)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else role_key(value)


def role_key(value: str) -> str:
    """A built-in role's key as its Role member; a configured role's as the plain string."""
    try:
        return Role(value)
    except ValueError:
        return value


class StaffRole(Base):
    """A role: the built-in ones (seeded by the migration, not deletable) and those an admin adds."""

    __tablename__ = "staff_roles"

    key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    # a configured role's name as its admin typed it; the built-in roles are named by the catalogues
    name: Mapped[str] = mapped_column(sa.String(100))
    builtin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # raised by every edit: a form carries the version it showed (as for staff accounts)
    version: Mapped[int] = mapped_column(default=1, server_default="1")


# One row per permission a role holds (the names are backend.security.permissions.Permission values).
staff_role_permissions = sa.Table(
    "staff_role_permissions",
    Base.metadata,
    sa.Column("role_key", sa.ForeignKey("staff_roles.key", ondelete="CASCADE"), primary_key=True),
    sa.Column("permission", sa.String(48), primary_key=True),
)


class StaffUserRole(Base):
    """One role one staff member holds. Her permissions are the union of her roles' (a head nurse is a
    nurse and a manager); the foreign key keeps a role someone holds from being deleted."""

    __tablename__ = "staff_user_roles"

    staff_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    role_key: Mapped[str] = mapped_column(
        RoleKey(), sa.ForeignKey("staff_roles.key"), primary_key=True, index=True
    )


def _grant(key: str) -> StaffUserRole:
    return StaffUserRole(role_key=role_key(key))


staff_departments = sa.Table(
    "staff_departments",
    Base.metadata,
    sa.Column("staff_id", sa.ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("department_id", sa.ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText("totp_secret"))
    totp_last_step: Mapped[int | None]  # the last accepted time step: a code is good once
    language: Mapped[str] = mapped_column(sa.String(8), default="zh-CN")
    # her own mobile, E.164, for on-duty alerts (SMS); encrypted like patients' numbers
    phone: Mapped[str | None] = mapped_column(EncryptedText("staff_phone"))
    # her work email as the hospital's staff file gives it (normalised), encrypted like her phone
    email: Mapped[str | None] = mapped_column(EncryptedText("staff_email"))
    # her own WeChat openid on the hospital's official account: on-duty alerts go there too, as a template
    wechat_openid: Mapped[str | None] = mapped_column(EncryptedText("staff_wechat_openid"))
    active: Mapped[bool] = mapped_column(default=True)
    # may approve others' revisions of clinical content in the studio (never their own)
    content_approver: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # raised by every admin edit: a form carries the version it showed, so a second admin's save over
    # a change she has not seen is refused instead of silently undoing it
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    departments: Mapped[list[Department]] = relationship(secondary=staff_departments)
    role_grants: Mapped[set[StaffUserRole]] = relationship(
        collection_class=set, cascade="all, delete-orphan", passive_deletes=True
    )
    # the keys of the roles she holds, the one source of truth for them: `StaffUser(roles={Role.NURSE})`,
    # `user.roles = {...}` (rows added and removed to match), `Role.ADMIN in user.roles`
    roles: AssociationProxy[set[str]] = association_proxy("role_grants", "role_key", creator=_grant)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def role_list(self) -> list[str]:
        """Her roles in a stable order (built-in ones first, as the forms list them), for pages and
        exports."""
        order = {r.value: i for i, r in enumerate(Role)}
        return sorted(self.roles, key=lambda k: (order.get(str(k), len(order)), str(k)))


class StaffSession(Base):
    """A signed-in browser. Only a hash of the cookie's token is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(sa.String(64))

    staff: Mapped[StaffUser] = relationship()


class PasswordReset(Base):
    """A one-time link to set a new password: only a hash of its token is stored; it expires and is
    good once."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Heartbeat(Base):
    """The last time a background loop (the periodic scheduler) showed it was alive."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginAttempt(Base):
    """Failed and successful sign-ins, for throttling by username and by address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        sa.Index("ix_login_attempts_username_at", "username", "at"),
        sa.Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    ip: Mapped[str] = mapped_column(sa.String(64))
    succeeded: Mapped[bool]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HomeLayout(Base):
    """Which home-page widgets a staff member shows, in order (absent: the default layout)."""

    __tablename__ = "home_layouts"

    staff_id: Mapped[int] = mapped_column(
        sa.ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    widgets: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
