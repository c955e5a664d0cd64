"""The step every staff action form shares: CSRF, the scoped object, the verb, then done or refused.

Inbox tasks, feedback cases and patient records each say how to find their object (or the 403/404
page), what the refusal page looks like and where a done action goes; `perform` is the one place that
decides what is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request, Response
from sqlalchemy.orm import Session

from backend.models import StaffSession
from backend.services import audit
from backend.services.refusal import ActionRefused
from backend.web.deps import client_ip
from backend.web.staff import check_csrf, render

T = TypeVar("T")


def denied(
    request: Request,
    db: Session,
    staff: StaffSession,
    *,
    subject: tuple[str, int],
    exists: bool,
    template: str = "staff/denied.html",
) -> Response:
    """Another department's item, a 403 with the attempt kept (`<kind>.view_denied`), or none, a 404."""
    if exists:
        audit.record(
            db, f"{subject[0]}.view_denied", staff_id=staff.staff_id, subject=subject, ip=client_ip(request)
        )
        db.commit()
    context = {"staff": staff, "missing": not exists}
    return render(request, template, staff.staff.language, context, 403 if exists else 404)


def perform(
    db: Session,
    staff: StaffSession,
    token: str,
    *,
    find: Callable[[], T | Response],
    verb: Callable[[T], object],
    refused: Callable[[T, ActionRefused], Response],
    done: Callable[[T], Response],
    keep_refusal: bool = False,
) -> Response:
    """Run `verb` on what `find` returns. A refusal rolls back what the verb did, or, with
    `keep_refusal` (verbs that refuse before changing anything but their audit row), commits that row.
    Otherwise the verb's work is committed before `done` runs, so `done` may kick jobs."""
    check_csrf(staff, token)
    target = find()
    if isinstance(target, Response):
        return target
    try:
        verb(target)
    except ActionRefused as exc:
        if keep_refusal:
            db.commit()
        else:
            db.rollback()
        return refused(target, exc)
    db.commit()
    return done(target)
