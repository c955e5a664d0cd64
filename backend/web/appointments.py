"""Patient calendar files: `/a/<token>` serves an appointment's .ics from a signed, expiring link."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from backend.app.settings import Settings
from backend.dialogue.content import load_catalog
from backend.i18n import negotiate
from backend.messaging.links import LinkExpired, LinkInvalid, LinkKind, read_token
from backend.models import Appointment, Patient, Slot
from backend.models.base import utcnow
from backend.services.calendar_ics import appointment_ics
from backend.web.deps import SessionDep, SettingsDep, templates

router = APIRouter()


def _refused(request: Request, settings: Settings, key: str, status: int) -> Response:
    # a refused link says nothing trustworthy about the patient: speak the browser's language
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    lang = negotiate(request.headers.get("accept-language") or settings.default_language)
    return templates.TemplateResponse(
        request,
        "chat/refused.html",
        {"lang": lang, "title": settings.hospital_name, "message": catalog.text(lang, key)},
        status_code=status,
    )


@router.get("/a/{token}")
def calendar_file(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """404 for a forged or unknown link, 410 for an expired one; a cancelled appointment still gives its
    file, marked cancelled, so a calendar that imported it can drop the entry."""
    try:
        appointment_id = read_token(settings, LinkKind.CALENDAR, token, settings.calendar_link_days * 86400)
    except LinkExpired:
        return _refused(request, settings, "booking.ics_link_expired", 410)
    except LinkInvalid:
        return _refused(request, settings, "booking.ics_link_invalid", 404)
    appointment = db.get(Appointment, appointment_id)
    if appointment is None:
        return _refused(request, settings, "booking.ics_link_invalid", 404)
    slot = db.get(Slot, appointment.slot_id)
    patient = db.get(Patient, appointment.patient_id)
    assert slot is not None and patient is not None
    body = appointment_ics(settings, appointment, slot, patient.language, utcnow())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="appointment-{appointment.id}.ics"',
            "Cache-Control": "no-store",
        },
    )
