"""The result delivery log: follow-up results written back to the hospital, filtered, exported, retried."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

from backend.app.settings import get_settings
from backend.integration.results import do_retry_delivery, targets
from backend.integration.results_log import DeliveryFilter, export_csv, list_deliveries, status_counts
from backend.models import DeliveryStatus, DeliveryTarget, ResultDelivery
from backend.models.base import utcnow
from backend.security.permissions import Permission
from backend.services import audit
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.ids import IdQuery
from backend.web.permits import refused
from backend.web.staff import check_csrf, render

router = APIRouter(prefix="/staff/integration/results")
PAGE = 50


def _filter(status: str, target: str, response: str) -> DeliveryFilter:
    return DeliveryFilter(
        status=DeliveryStatus(status) if status in set(DeliveryStatus) else None,
        target=DeliveryTarget(target) if target in set(DeliveryTarget) else None,
        response_id=int(response) if response.strip().isdigit() else None,
    )


@router.get("", response_class=HTMLResponse)
def deliveries(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    status: str = "",
    target: str = "",
    response: str = "",
    before: IdQuery | None = None,
    done: str = "",
) -> Response:
    if (denied := refused(request, db, staff, Permission.INTEGRATION, "integration.view_denied")) is not None:
        return denied
    rows = list_deliveries(db, _filter(status, target, response), limit=PAGE, before_id=before)
    counts = status_counts(db)
    context = {
        "staff": staff,
        "rows": rows,
        "bars": [(key, counts[key]) for key in (s.value for s in DeliveryStatus)],
        "statuses": [s.value for s in DeliveryStatus],
        "targets": [t.value for t in DeliveryTarget],
        "configured": [t.value for t in targets(get_settings())],
        "v": {"status": status, "target": target, "response": response},
        "older": rows[-1].id if len(rows) == PAGE else None,
        "done": done,
    }
    return render(request, "staff/integration_results.html", staff.staff.language, context)


@router.get(".csv")
def deliveries_csv(
    request: Request, db: SessionDep, staff: StaffDep, status: str = "", target: str = "", response: str = ""
) -> Response:
    if (denied := refused(request, db, staff, Permission.INTEGRATION, "integration.view_denied")) is not None:
        return denied
    rows = list_deliveries(db, _filter(status, target, response), limit=10_000)
    audit.record(db, "results.export", staff_id=staff.staff_id, ip=client_ip(request), rows=len(rows))
    return PlainTextResponse(
        export_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="result-deliveries.csv"'},
    )


@router.post("/{delivery_id}/retry")
def retry(
    request: Request, delivery_id: int, db: SessionDep, staff: StaffDep, csrf_token: str = Form("")
) -> Response:
    if (denied := refused(request, db, staff, Permission.INTEGRATION, "integration.view_denied")) is not None:
        return denied
    check_csrf(staff, csrf_token)
    if db.get(ResultDelivery, delivery_id) is None:
        return PlainTextResponse("not found", status_code=404)
    try:
        do_retry_delivery(db, delivery_id, staff_id=staff.staff_id, now=utcnow())
    except ValueError:
        return RedirectResponse("/staff/integration/results?done=refused", status_code=303)
    return RedirectResponse("/staff/integration/results?done=retried", status_code=303)
