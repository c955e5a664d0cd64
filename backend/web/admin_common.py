"""What every admin console page shares: the admin-only dependency (others get a 403 with the attempt
audited), and the refusal texts' template."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.models import Role, StaffSession
from backend.services import audit
from backend.web.deps import SessionDep, StaffDep, client_ip

PREFIX = "/staff/admin"


class NotAdmin(Exception):
    """A signed-in staff member who is not an admin asked for an admin page (the app renders a 403)."""

    def __init__(self, staff: StaffSession) -> None:
        super().__init__("admin only")
        self.staff = staff


def admin_session(request: Request, db: SessionDep, staff: StaffDep) -> StaffSession:
    if staff.staff.role is not Role.ADMIN:
        audit.record(
            db, "admin.view_denied", staff_id=staff.staff_id, ip=client_ip(request), path=request.url.path
        )
        db.commit()
        raise NotAdmin(staff)
    return staff


AdminDep = Annotated[StaffSession, Depends(admin_session)]
