"""Staff view a patient's image or voice note: decrypted on the fly, only if they may see the patient, and
served as a download (backend/web/downloads.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from backend.messaging.media import load_blob
from backend.models import Message
from backend.services import audit
from backend.services.patients import may_view
from backend.web.deps import SessionDep, SettingsDep, StaffDep
from backend.web.downloads import file_response

router = APIRouter()


@router.get("/staff/media/{message_id}/{index}")
def media_file(
    message_id: int, index: int, db: SessionDep, settings: SettingsDep, staff: StaffDep
) -> Response:
    message = db.get(Message, message_id)
    items = (message.media or []) if message is not None else []
    patient_id = message.conversation.patient_id if message is not None else None
    if message is None or not 0 <= index < len(items) or not items[index].get("stored"):
        return PlainTextResponse("not found", status_code=404)
    if patient_id is None or not may_view(db, staff.staff, patient_id):
        audit.record(
            db,
            "media.view_denied",
            staff_id=staff.staff_id,
            patient_id=patient_id,
            subject=("message", message_id),
        )
        return PlainTextResponse("not found", status_code=404)
    audit.record(
        db, "media.view", staff_id=staff.staff_id, patient_id=patient_id, subject=("message", message_id)
    )
    item = items[index]
    return file_response(
        load_blob(settings, message_id, str(item["stored"])),
        str(item.get("mime_type") or ""),
        f"message-{message_id}-{index}",
    )
