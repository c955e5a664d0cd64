"""Long work that staff start and watch: imports, batch sends, reports. One row per run, with its state,
progress, counts, the first errors, and the point it may resume from after a crash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, enum_column, utcnow


class WorkState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in {WorkState.DONE, WorkState.FAILED, WorkState.CANCELLED}


class WorkJob(Base):
    __tablename__ = "work_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # which runner (backend.work.runs registry); its parameters are the runner's own, JSON
    kind: Mapped[str] = mapped_column(sa.String(64), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    state: Mapped[WorkState] = mapped_column(enum_column(WorkState), default=WorkState.QUEUED, index=True)
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # written with every checkpoint: a running job whose heartbeat is old has lost its worker
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    counts: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
    # the first errors ({"at": row or item, "error": text}); never message bodies or phone numbers
    errors: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    error_count: Mapped[int] = mapped_column(default=0)
    # where a resumed run picks up (the runner's own shape), and what it produced
    cursor: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    failure: Mapped[str | None] = mapped_column(sa.String(500))
    cancel_requested: Mapped[bool] = mapped_column(default=False)

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.state is WorkState.DONE else None
        return min(100, int(100 * self.done / self.total))
