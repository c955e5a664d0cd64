"""The staff home page (/staff): the widgets a user chose, in her order, and the page to choose them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from backend.models.base import utcnow
from backend.services import audit, home, inbox_queue, mentions
from backend.services.home import LayoutInvalid, Widget
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff")


@router.get("", response_class=HTMLResponse)
def home_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    user = staff.staff
    widgets = home.layout_of(db, user.id)
    data: dict[Widget, Any] = {}
    for widget in widgets:  # only what is shown is queried
        if widget is Widget.MY_TASKS:
            data[widget] = home.my_tasks(db, user)
        elif widget is Widget.MENTIONS:
            data[widget] = mentions.latest(db, user)
        elif widget is Widget.DUE_FOLLOW_UPS:
            data[widget] = home.due_follow_ups(db, user, utcnow())
        elif widget is Widget.QUEUES:
            data[widget] = inbox_queue.queue_counts(db, user)
        else:
            data[widget] = home.shortcuts(user)
    patients = sorted(
        {
            i.task.patient_id
            for key in (Widget.MY_TASKS, Widget.MENTIONS)
            for i in data.get(key, [])
            if i.task.patient_id is not None
        }
        | {i.follow_up.patient_id for i in data.get(Widget.DUE_FOLLOW_UPS, [])}
    )
    if patients:  # names of patients are shown: a view of patient data
        audit.record(db, "home.view", staff_id=user.id, ip=client_ip(request), patients=patients)
    return render(
        request,
        "staff/home.html",
        user.language,
        {"staff": staff, "widgets": [(w.value, data[w]) for w in widgets]},
    )


def _layout_page(
    request: Request, staff: Any, shown: list[Widget], status: int = 200, error: bool = False
) -> Response:
    rows = [
        (w.value, w in shown, shown.index(w) + 1 if w in shown else len(shown) + i + 1)
        for i, w in enumerate(Widget)
    ]
    return render(
        request,
        "staff/home_layout.html",
        staff.staff.language,
        {"staff": staff, "rows": rows, "error": error},
        status,
    )


@router.get("/home/layout", response_class=HTMLResponse)
def layout_form(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    return _layout_page(request, staff, home.layout_of(db, staff.staff_id))


@router.post("/home/layout")
async def save_layout(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    form = await request.form()
    check_csrf(staff, str(form.get("csrf_token", "")))
    values = {k: str(v) for k, v in form.items()}
    try:
        widgets = home.parse_layout(values)
    except LayoutInvalid:
        return _layout_page(request, staff, home.layout_of(db, staff.staff_id), 400, error=True)
    home.do_save_layout(db, staff_id=staff.staff_id, widgets=widgets, ip=client_ip(request))
    return RedirectResponse("/staff", status_code=303)
