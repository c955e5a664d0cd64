"""The hospital's organisation: departments, wards and clinicians (doctors and nurses)."""

from __future__ import annotations

import re
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models.base import Base, enum_column

# The hospital's own code for a department, ward or clinician (what its HIS and HL7 messages carry).
ORG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    names: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)  # per-language display names
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    wards: Mapped[list[Ward]] = relationship(back_populates="department")

    def name_in(self, lang: str) -> str:
        return name_in(self.names, self.name, lang)


class Ward(Base):
    __tablename__ = "wards"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    names: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict, server_default="{}")
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    department: Mapped[Department] = relationship(back_populates="wards")


class ClinicianKind(StrEnum):
    DOCTOR = "doctor"
    NURSE = "nurse"


class Clinician(Base):
    __tablename__ = "clinicians"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ClinicianKind] = mapped_column(enum_column(ClinicianKind))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    names: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict, server_default="{}")
    # the hospital's own code for her (HIS staff number), matched by HL7 doctor codes
    code: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    title: Mapped[str | None] = mapped_column(sa.String(100))
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))

    department: Mapped[Department] = relationship()

    def name_in(self, lang: str) -> str:
        return name_in(self.names, self.name, lang)


def name_in(names: dict[str, str] | None, name: str, lang: str) -> str:
    """A display name in the language (or its base language: "zh" for "zh-CN"), else the record's name."""
    found = names or {}
    return found.get(lang) or found.get(lang.split("-")[0]) or name
