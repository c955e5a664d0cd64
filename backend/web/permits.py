"""The staff pages' side of "may this staff member do X": a dependency that requires a permission (a
refusal is audited and shown as the 403 page) and a helper for routes that answer the refusal
themselves. Both ask backend.security.permissions.may, the one place that decides."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response
from sqlalchemy.orm import Session

from backend.models import StaffSession
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import render


class NotPermitted(Exception):
    """A signed-in staff member asked for something her role does not allow (the app renders a 403)."""

    def __init__(self, staff: StaffSession, permission: Permission, page: str = "staff/denied.html") -> None:
        super().__init__(f"needs {permission.value}")
        self.staff = staff
        self.permission = permission
        self.page = page


def record_refusal(
    request: Request, db: Session, staff: StaffSession, permission: Permission, action: str
) -> None:
    audit.record(
        db,
        action,
        staff_id=staff.staff_id,
        ip=client_ip(request),
        path=request.url.path,
        permission=permission.value,
    )
    db.commit()  # the refusal's row stays although the request fails


def requires(
    permission: Permission, *, action: str = "staff.denied", page: str = "staff/denied.html"
) -> Callable[[Request, Session, StaffSession], StaffSession]:
    """A dependency: the signed-in session when its staff member holds `permission`, else NotPermitted
    (audited as `action`)."""

    def dependency(request: Request, db: SessionDep, staff: StaffDep) -> StaffSession:
        if not may(staff.staff, permission):
            record_refusal(request, db, staff, permission, action)
            raise NotPermitted(staff, permission, page)
        return staff

    return dependency


def refused(
    request: Request, db: Session, staff: StaffSession, permission: Permission, action: str
) -> Response | None:
    """None when the staff member holds `permission`; else the 403 page, the attempt audited as
    `action`. For routes that check in their body (the older pages' `_forbidden` helpers)."""
    if may(staff.staff, permission):
        return None
    record_refusal(request, db, staff, permission, action)
    return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
