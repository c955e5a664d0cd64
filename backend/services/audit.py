"""Writing the audit trail. Details never carry message bodies or phone numbers. Rows are inserted
unsealed, with no lock shared between writers; the sealer (backend/security/audit_chain.py) adds each
committed row to the audit hash chain within seconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from backend.models import AuditEvent


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
        action=action,
        staff_id=staff_id,
        patient_id=patient_id,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        ip=ip,
        detail=detail,
    )
    session.add(event)
    return event
