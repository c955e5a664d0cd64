"""Staff pages of clinical safety: mark a message the bot should have escalated, the review queue and its
export, the on-duty roster, and the response times per department and task kind. Routes parse, call a
verb or a query, render."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

from backend.admin.exports import workbook
from backend.models import TaskKind, TaskPriority
from backend.services import audit, safety_review, sla
from backend.services.duty import do_set_roster, roster_rows
from backend.services.refusal import ActionRefused, Reason
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.downloads import spreadsheet
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


def _manager(request: Request, staff: StaffDep) -> Response | None:
    if sla.may_manage(staff.staff):
        return None
    return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)


def _department_filter(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


def _kind_filter(raw: str) -> TaskKind | None:
    """A task kind from the page's filter (blank or unknown: the tables per priority)."""
    return TaskKind(raw) if raw in TaskKind._value2member_map_ else None


def _sla_page(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    department: int | None,
    kind: TaskKind | None,
    *,
    status: int = 200,
    error: str | None = None,
    entered: tuple[str, dict[str, str]] | None = None,
    saved: str | None = None,
) -> Response:
    context = {
        "staff": staff,
        "priorities": list(TaskPriority),
        "kinds": list(TaskKind),
        "kind": kind,
        "hospital": sla.hospital_table(),
        "rows": sla.sla_rows(db, kind, department),
        "departments": sla.sla_rows(db, None),
        "department": department,
        "error": error,
        "entered_for": entered[0] if entered else None,  # the row whose typed values are shown again
        "entered": entered[1] if entered else {},
        "saved": saved,
    }
    return render(request, "staff/sla.html", staff.staff.language, context, status)


def _sla_query(department: int | None, kind: TaskKind | None, saved: str | None = None) -> str:
    pairs = [("saved", saved), ("department", department), ("kind", kind.value if kind else None)]
    query = "&".join(f"{k}={v}" for k, v in pairs if v is not None)
    return f"?{query}" if query else ""


@router.get("/sla", response_class=HTMLResponse)
def sla_page(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    department: str = "",
    kind: str = "",
    saved: str = "",
) -> Response:
    if (denied := _manager(request, staff)) is not None:
        return denied
    chosen, task_kind = _department_filter(department), _kind_filter(kind)
    ip = client_ip(request)
    audit.record(
        db, "sla.view", staff_id=staff.staff_id, ip=ip, department=chosen, kind=task_kind and task_kind.value
    )
    shown = saved if saved == "hospital" or saved.isdigit() else None
    return _sla_page(request, db, staff, chosen, task_kind, saved=shown)


@router.get("/sla.xlsx")
def sla_export(
    request: Request, db: SessionDep, staff: StaffDep, department: str = "", kind: str = ""
) -> Response:
    if (denied := _manager(request, staff)) is not None:
        return denied
    chosen, task_kind = _department_filter(department), _kind_filter(kind)
    # without a kind, every table in force: per priority, then per kind
    kinds = [task_kind] if task_kind is not None else [None, *TaskKind]
    rows = sla.export_rows([r for k in kinds for r in sla.sla_rows(db, k, chosen)])
    ip = client_ip(request)
    audit.record(
        db,
        "sla.export",
        staff_id=staff.staff_id,
        ip=ip,
        department=chosen,
        kind=task_kind and task_kind.value,
        rows=len(rows),
    )
    header = ("department", "task kind", "priority", "minutes", "set by")
    filters = {"department": chosen, "kind": task_kind and task_kind.value}
    return spreadsheet(workbook("Response times", filters, header, rows), "response-times.xlsx")


@router.post("/sla/{row}")
async def set_sla(request: Request, row: str, db: SessionDep, staff: StaffDep) -> Response:
    """Save one row of the page whole: a department's ("<id>") or, for a task kind, the hospital's
    ("hospital")."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_csrf(staff, form.get("csrf_token", ""))
    if (denied := _manager(request, staff)) is not None:
        return denied
    back, kind = _department_filter(form.get("filter", "")), _kind_filter(form.get("kind", ""))
    entered = {p.value: form.get(p.value, "")[:16] for p in TaskPriority}
    try:
        if row != "hospital" and not (row.isdigit() and len(row) < 19):
            raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
        minutes = {p: sla.parse_minutes(entered[p.value]) for p in TaskPriority}
        sla.do_set_kind_table(
            db,
            kind=kind,
            department_id=None if row == "hospital" else int(row),
            minutes=minutes,
            staff_id=staff.staff_id,
        )
    except ActionRefused as exc:
        db.rollback()
        # the page again with what was typed, so nothing is lost, and the reason
        status = 404 if exc.reason == Reason.NO_SUCH_DEPARTMENT else 400
        return _sla_page(
            request, db, staff, back, kind, status=status, error=exc.reason, entered=(row, entered)
        )
    db.commit()
    return RedirectResponse(f"/staff/safety/sla{_sla_query(back, kind, row)}", status_code=303)
