"""Read-only HIS sources CareLoop pulls from on a schedule, where the HIS cannot send HL7: a database
view (or any SELECT) watched by an updated-at column, its rows read as an import file's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, EncryptedText, UTCDateTime, utcnow


class HisSource(Base):
    __tablename__ = "his_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    # also the import source: whose identifiers and hospital codes the rows carry, as MSH-4 for HL7
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    # the SQLAlchemy URL with its password: a secret, kept only encrypted and never shown again
    url: Mapped[str] = mapped_column(EncryptedText("his_source_url"))
    query: Mapped[str] = mapped_column(sa.Text)  # a SELECT with a :since bind parameter
    kind: Mapped[str] = mapped_column(sa.String(32))  # the import kind the rows feed
    # import field -> result column, tried before the header names the import knows
    columns: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    watermark_column: Mapped[str] = mapped_column(sa.String(100))
    # the updated-at the next pull starts from (inclusive), as the HIS wrote it: ISO, the HIS's own clock
    watermark: Mapped[str | None] = mapped_column(sa.String(40))
    interval_minutes: Mapped[int] = mapped_column(default=60)
    auto_apply: Mapped[bool] = mapped_column(default=False)  # confirm rows without problems unasked
    enabled: Mapped[bool] = mapped_column(default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("work_jobs.id", ondelete="SET NULL"))
    last_outcome: Mapped[str | None] = mapped_column(sa.String(16))  # a PullOutcome
    last_error: Mapped[str | None] = mapped_column(sa.String(500))  # safe to show: no row data in it
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
