"""What the admin console configures for sending: channel settings over the environment's defaults, and
quiet hours and daily caps per hospital and per department."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, utcnow


class ChannelSetting(Base):
    """One channel setting set in the console; without a row the environment setting (or the template
    file) applies. A secret is kept only encrypted in `secret` and never shown again."""

    __tablename__ = "channel_settings"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(sa.JSON(none_as_null=True), nullable=True)  # None for a secret
    secret: Mapped[str | None] = mapped_column(EncryptedText("channel_secret"))
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContactLimit(Base):
    """The hospital's (`department_id` None, scope "hospital") or one department's quiet hours and daily
    cap. A None field sets nothing at this level; the strictest of all levels applies."""

    __tablename__ = "contact_limits"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(32), unique=True)  # "hospital" or "department:<id>"
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id", ondelete="CASCADE"))
    quiet_start: Mapped[int | None] = mapped_column(sa.SmallInteger)  # local hour
    quiet_end: Mapped[int | None] = mapped_column(sa.SmallInteger)
    daily_cap: Mapped[int | None] = mapped_column()
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
