"""Writing the audit trail. Details never carry message bodies or phone numbers. Rows are inserted
unsealed, with no lock shared between writers; the sealer (backend/security/audit_chain.py) adds each
committed row to the audit hash chain within seconds. Each row carries an HMAC of its content under the
audit key, so a row slipped in with plain SQL before the sealer comes is not chained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import AuditEvent
from backend.models.base import utcnow
from backend.security.audit_chain import row_mac


def record(
    session: Session,
    action: str,
    *,
    staff_id: int | None = None,
    patient_id: int | None = None,
    subject: tuple[str, int] | None = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    event = AuditEvent(
        **row(action, staff_id=staff_id, patient_id=patient_id, subject=subject, ip=ip, detail=detail)
    )
    session.add(event)
    return event


def row(
    action: str,
    *,
    at: datetime | None = None,
    staff_id: int | None = None,
    patient_id: int | None = None,
    subject: tuple[str, int] | None = None,
    ip: str | None = None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """An audit row's values with its MAC, for `record` and for verbs that insert many rows in one
    statement (the sealer chains no row without a valid MAC)."""
    at = at or utcnow()
    subject_type, subject_id = subject if subject else (None, None)
    content: dict[str, Any] = {
        "at": at,
        "action": action,
        "staff_id": staff_id,
        "patient_id": patient_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "ip": ip,
        "detail": detail,
    }
    return {**content, "mac": row_mac(get_settings().audit_key_bytes, **content)}
