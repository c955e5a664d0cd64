"""The voice monitoring page (/staff/voice): calls up now, today's coverage and rates, per campaign;
scoped to the viewer's departments, and each view audited. Below them, how each language is heard (the
speech models checked at start) and each site's call windows and caller id."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from backend.app.settings import get_settings
from backend.models.base import utcnow
from backend.services import audit
from backend.services.patients import department_ids
from backend.voice.call_windows import all_sites
from backend.voice.dialer import effective_sites, site_defaults
from backend.voice.engines import speech_rows
from backend.voice.monitoring import voice_report
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import render

router = APIRouter(prefix="/staff")


@router.get("/voice", response_class=HTMLResponse)
def voice_page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
    allowed = department_ids(staff.staff)
    report = voice_report(db, utcnow(), allowed)
    audit.record(
        db,
        "voice.monitor_view",
        staff_id=staff.staff_id,
        ip=client_ip(request),
        departments=sorted(allowed) if allowed is not None else None,
    )
    settings = get_settings()
    return render(
        request,
        "staff/voice.html",
        staff.staff.language,
        {
            "staff": staff,
            "report": report,
            "threshold": settings.voice_valid_confidence,
            "speech": speech_rows(settings),
            "sites": all_sites(effective_sites(db, settings), site_defaults(settings)),
        },
    )
