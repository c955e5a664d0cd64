"""Who and what staff pages name: departments and active staff, in the order the pages list them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from backend.models import Department, StaffUser, Ward


def departments(session: Session) -> list[Department]:
    """Every department, by name (pages scope what a viewer may pick; naming a row needs them all)."""
    return list(session.scalars(sa.select(Department).order_by(Department.name)))


def active_staff(session: Session) -> list[StaffUser]:
    """Active staff with their departments loaded (assignment targets are checked against them)."""
    query = sa.select(StaffUser).where(StaffUser.active).options(selectinload(StaffUser.departments))
    return list(session.scalars(query.order_by(StaffUser.display_name)))


def staff_names(session: Session) -> dict[int, str]:
    """Every staff member's display name, active or not: history names whoever acted."""
    return {p.id: p.display_name for p in session.scalars(sa.select(StaffUser))}


def wards(session: Session) -> list[Ward]:
    return list(session.scalars(sa.select(Ward).order_by(Ward.name)))
