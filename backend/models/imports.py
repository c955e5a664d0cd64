"""Column mappings of import files, saved per source and kind so the next file from the same HIS export
is read the same way."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, utcnow


class ImportMapping(Base):
    __tablename__ = "import_mappings"
    __table_args__ = (sa.UniqueConstraint("source", "kind", name="uq_import_mappings_source_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # the sending system's name: also the identifiers' assigning authority and whose code table it is
    source: Mapped[str] = mapped_column(sa.String(180))
    kind: Mapped[str] = mapped_column(sa.String(32))  # backend.imports.columns.ImportKind
    columns: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)  # field -> header as written
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
