"""Staff pages of clinical safety: mark a message the bot should have escalated, the review queue and its
export, and the on-duty roster. Routes parse, call a verb or a query, render."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

from backend.services import audit, safety_review
from backend.services.duty import do_set_roster, roster_rows
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.ids import id_form
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff/safety")


def _back(path: str) -> str:
    """Only a staff page of ours to go back to (never another site)."""
    return path if path.startswith("/staff/") and "//" not in path else "/staff"


@router.post("/missed")
def mark_missed(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    message_id: int = id_form(),
    category: str = Form(default="", max_length=32),
    note: str = Form(default="", max_length=safety_review.MAX_NOTE),
    back: str = Form(default="/staff", max_length=300),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    outcome = "marked"
    try:
        safety_review.do_mark_missed(
            db, message_id=message_id, user=staff.staff, category=category, note=note, ip=client_ip(request)
        )
    except ActionRefused as exc:
        outcome = exc.reason
    db.commit()
    target = _back(back)
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}safety={outcome}", status_code=303)


def _reviewer(request: Request, staff: StaffDep) -> Response | None:
    if safety_review.may_review(staff.staff):
        return None
    return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)


@router.get("/reviews", response_class=HTMLResponse)
def reviews(request: Request, db: SessionDep, staff: StaffDep, all: bool = False) -> Response:
    if (denied := _reviewer(request, staff)) is not None:
        return denied
    rows = safety_review.queue(db, pending_only=not all)
    audit.record(db, "safety.reviews", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    context = {"staff": staff, "rows": rows, "all": all}
    return render(request, "staff/safety_reviews.html", staff.staff.language, context)


@router.get("/reviews.csv")
def reviews_csv(request: Request, db: SessionDep, staff: StaffDep, all: bool = False) -> Response:
    if (denied := _reviewer(request, staff)) is not None:
        return denied
    rows = safety_review.queue(db, pending_only=not all)
    audit.record(db, "safety.reviews_export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    return PlainTextResponse(
        safety_review.export_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="safety-reviews.csv"'},
    )


@router.post("/reviews/{entry_id}/reviewed")
def reviewed(
    request: Request, entry_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form(max_length=128)
) -> Response:
    check_csrf(staff, csrf_token)
    try:
        safety_review.do_mark_reviewed(db, entry_id=entry_id, user=staff.staff, ip=client_ip(request))
    except ActionRefused:
        return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)
    db.commit()
    return RedirectResponse("/staff/safety/reviews", status_code=303)


@router.get("/duty", response_class=HTMLResponse)
def duty_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    if (denied := _reviewer(request, staff)) is not None:
        return denied
    context = {"staff": staff, "rows": roster_rows(db)}
    return render(request, "staff/duty.html", staff.staff.language, context)


@router.post("/duty/{department_id}")
def set_duty(
    request: Request,
    department_id: int,
    db: SessionDep,
    staff: StaffDep,
    on_duty: str = Form(default=""),
    fallback: str = Form(default=""),
    csrf_token: str = Form(max_length=128),
) -> Response:
    check_csrf(staff, csrf_token)
    if (denied := _reviewer(request, staff)) is not None:
        return denied
    try:
        do_set_roster(
            db,
            department_id=department_id,
            on_duty_id=int(on_duty) if on_duty.isdigit() else None,
            fallback_id=int(fallback) if fallback.isdigit() else None,
            staff_id=staff.staff_id,
        )
    except ActionRefused as exc:
        db.rollback()
        context = {"staff": staff, "rows": roster_rows(db), "error": exc.reason}
        return render(request, "staff/duty.html", staff.staff.language, context, 400)
    db.commit()
    return RedirectResponse("/staff/safety/duty", status_code=303)
