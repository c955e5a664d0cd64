"""What every admin console page shares: the dependencies that require an administrative permission
(others get a 403 with the attempt audited), and the refusal texts' template."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from backend.models import StaffSession
from backend.security.permissions import ADMINISTRATIVE, Permission, granted
from backend.web.deps import SessionDep, StaffDep
from backend.web.permits import NotPermitted, record_refusal, requires

PREFIX = "/staff/admin"
DENIED_PAGE = "staff/admin/denied.html"


def _admin(permission: Permission) -> Any:
    return Depends(requires(permission, action="admin.view_denied", page=DENIED_PAGE))


def console_session(request: Request, db: SessionDep, staff: StaffDep) -> StaffSession:
    """The console's home: for anyone holding at least one administrative permission."""
    if not granted(staff.staff) & ADMINISTRATIVE:
        record_refusal(request, db, staff, Permission.ADMIN_SETTINGS, "admin.view_denied")
        raise NotPermitted(staff, Permission.ADMIN_SETTINGS, DENIED_PAGE)
    return staff


ConsoleDep = Annotated[StaffSession, Depends(console_session)]
# Each part of the console asks for its own permission; AdminDep (system health, settings, and any
# admin page that names no narrower permission) asks for admin.settings.
AdminDep = Annotated[StaffSession, _admin(Permission.ADMIN_SETTINGS)]
StaffAdminDep = Annotated[StaffSession, _admin(Permission.ADMIN_STAFF)]
OrgAdminDep = Annotated[StaffSession, _admin(Permission.ADMIN_ORG)]
AuditDep = Annotated[StaffSession, _admin(Permission.AUDIT_READ)]
PrivacyDep = Annotated[StaffSession, _admin(Permission.PRIVACY_DECIDE)]

# The name the app's 403 handler used before permissions: the same exception now.
NotAdmin = NotPermitted
