"""Evidence attached to feedback cases: checked (size, type), sealed under the data key, read back audited.

Only document, image and audio types are accepted, by extension and by content: a renamed executable
(a Windows PE, ELF or Mach-O binary, a script with #!) is refused whatever it is called.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath

from sqlalchemy.orm import Session

from backend.app.settings import Settings
from backend.messaging.media import seal_to_file, unseal_file
from backend.models import CaseAttachment, FeedbackCase, HandlingRecord
from backend.models.base import utcnow
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason

ALLOWED = {  # extension -> the type it is served as
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".amr": "audio/amr",
    ".wav": "audio/wav",
}
SERVED_TYPES = frozenset(ALLOWED.values())
EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"#!", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
MAX_NAME = 255


class AttachmentRefused(ActionRefused):
    """reason: "empty", "too_large", "forbidden_type" or "bad_name"."""


def clean_name(filename: str) -> str:
    """The file's own name, without any folders a browser sent along."""
    name = PureWindowsPath(PurePosixPath(filename).name).name.strip()
    if not name or len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        raise AttachmentRefused(Reason.BAD_NAME)
    return name


def check_upload(filename: str, data: bytes, max_bytes: int) -> tuple[str, str]:
    """(clean name, mime type) for an acceptable file, else AttachmentRefused. Pure."""
    name = clean_name(filename)
    if not data:
        raise AttachmentRefused(Reason.EMPTY)
    if len(data) > max_bytes:
        raise AttachmentRefused(Reason.TOO_LARGE)
    mime = ALLOWED.get(PurePosixPath(name.lower()).suffix)
    if mime is None or data.startswith(EXECUTABLE_MAGIC):
        raise AttachmentRefused(Reason.FORBIDDEN_TYPE)
    return name, mime


def attachment_kind(case_id: int) -> str:
    """What a case's attachment files are sealed with (bound in as associated data)."""
    return f"case-attachment:{case_id}"


def do_attach(
    session: Session,
    settings: Settings,
    *,
    case: FeedbackCase,
    staff_id: int,
    filename: str,
    data: bytes,
    record: HandlingRecord | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> CaseAttachment:
    """Check, then seal the file and add its row. A refused file leaves nothing behind."""
    name, mime = check_upload(filename, data, settings.max_attachment_bytes)
    stored = seal_to_file(settings, attachment_kind(case.id), data)
    attachment = CaseAttachment(
        case_id=case.id,
        record_id=record.id if record else None,
        filename=name,
        mime_type=mime,
        size=len(data),
        stored=stored,
        uploaded_by_id=staff_id,
        at=now or utcnow(),
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        "case.attach",
        staff_id=staff_id,
        patient_id=case.patient_id,
        subject=("case", case.id),
        ip=ip,
        attachment=attachment.id,
        size=len(data),
        mime_type=mime,
    )
    return attachment


def read_attachment(
    session: Session,
    settings: Settings,
    *,
    attachment: CaseAttachment,
    case: FeedbackCase,
    staff_id: int,
    ip: str | None,
) -> bytes:
    """The decrypted file, for a caller who has checked the viewer may see the case; audited."""
    audit.record(
        session,
        "case.attachment_view",
        staff_id=staff_id,
        patient_id=case.patient_id,
        subject=("case", case.id),
        ip=ip,
        attachment=attachment.id,
    )
    return unseal_file(settings, attachment_kind(case.id), attachment.stored)
