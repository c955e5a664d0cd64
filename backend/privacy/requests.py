"""Correction, anonymisation and erasure as requests: one staff member asks (with the patient's reason),
a privacy officer (an admin, never the one who asked) approves or rejects. Legal holds are checked when
it is asked and again when it is approved; every step writes its audit row in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import Patient, RightsKind, RightsRequest, RightsState, Sex, StaffUser
from backend.privacy.erasure import wipe_patient, write_tombstone
from backend.privacy.holds import Hold, holds_on
from backend.security.identifiers import InvalidPhoneNumber, normalise_phone
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from bots.domain import LANGUAGES

MAX_REASON = 1000
MAX_NOTE = 500
CORRECTABLE = ("name", "birth_date", "sex", "language", "phone", "id_number")


class HeldRefusal(ActionRefused):
    """Refused by legal holds: `holds` says which, for the page to list."""

    def __init__(self, holds: list[Hold]) -> None:
        super().__init__(Reason.LEGAL_HOLD)
        self.holds = holds


def may_decide(user: StaffUser) -> bool:
    """The privacy officer's part (by default the privacy officer and admins)."""
    return may(user, Permission.PRIVACY_DECIDE)


def erased(patient: Patient) -> bool:
    return patient.mrn == f"ERASED-{patient.id}"


def _reason(text: str) -> str:
    text = text.strip()
    if not text:
        raise ActionRefused(Reason.REASON_REQUIRED)
    if len(text) > MAX_REASON:
        raise ActionRefused(Reason.REASON_LENGTH)
    return text


def parse_changes(values: dict[str, str]) -> dict[str, str]:
    """The fields the form filled, checked and in their stored form; raises for a wrong value."""
    changes: dict[str, str] = {}
    for name in CORRECTABLE:
        raw = (values.get(name) or "").strip()
        if not raw:
            continue
        if name == "name" and len(raw) > 200:
            raise ActionRefused(Reason.CORRECTION_INVALID)
        if name == "birth_date":
            try:
                born = date.fromisoformat(raw)
            except ValueError:
                raise ActionRefused(Reason.CORRECTION_INVALID) from None
            if born > date.today():
                raise ActionRefused(Reason.CORRECTION_INVALID)
            raw = born.isoformat()
        if name == "sex" and raw not in {s.value for s in Sex}:
            raise ActionRefused(Reason.CORRECTION_INVALID)
        if name == "language" and raw not in LANGUAGES:
            raise ActionRefused(Reason.CORRECTION_INVALID)
        if name == "phone":
            try:
                raw = normalise_phone(raw, get_settings().default_region)
            except InvalidPhoneNumber:
                raise ActionRefused(Reason.CORRECTION_INVALID) from None
        if name == "id_number" and len(raw) > 64:
            raise ActionRefused(Reason.CORRECTION_INVALID)
        changes[name] = raw
    if not changes:
        raise ActionRefused(Reason.CORRECTION_EMPTY)
    return changes


def changes_of(request: RightsRequest) -> dict[str, str]:
    return dict(json.loads(request.changes)) if request.changes else {}


def _current_holds(session: Session, patient_id: int, kind: RightsKind, now: datetime) -> list[Hold]:
    if kind is RightsKind.CORRECTION:
        return []
    return holds_on(
        session, patient_id, kind, now=now, retention_years=get_settings().medical_record_retention_years
    )


def do_request(
    session: Session,
    *,
    patient: Patient,
    kind: RightsKind,
    reason: str,
    user: StaffUser,
    now: datetime,
    changes: dict[str, str] | None = None,
    ip: str | None = None,
) -> RightsRequest:
    """A new request. One that a legal hold stands against is kept as BLOCKED, with its holds, so the
    patient's request and the answer she was given are on record; nothing about her is changed."""
    text = _reason(reason)
    if erased(patient):
        raise ActionRefused(Reason.ALREADY_ERASED)
    if kind is RightsKind.CORRECTION and not changes:
        raise ActionRefused(Reason.CORRECTION_EMPTY)
    pending = session.scalar(
        sa.select(RightsRequest.id).where(
            RightsRequest.patient_id == patient.id,
            RightsRequest.kind == kind,
            RightsRequest.state == RightsState.PENDING,
        )
    )
    if pending is not None:
        raise ActionRefused(Reason.ALREADY_REQUESTED)
    holds = _current_holds(session, patient.id, kind, now)
    request = RightsRequest(
        kind=kind,
        patient_id=patient.id,
        state=RightsState.BLOCKED if holds else RightsState.PENDING,
        reason=text,
        changes=json.dumps(changes, ensure_ascii=False) if changes else None,
        holds=[h.value for h in holds],
        requested_by_id=user.id,
        created_at=now,
        decided_at=now if holds else None,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        "rights.requested",
        staff_id=user.id,
        patient_id=patient.id,
        subject=("rights_request", request.id),
        ip=ip,
        kind=kind.value,
        fields=sorted(changes or {}),  # which fields, never their values
        holds=request.holds,
    )
    return request


def _check_decider(session: Session, request: RightsRequest, user: StaffUser, ip: str | None) -> None:
    if not may_decide(user):
        audit.record(
            session,
            "rights.decide_denied",
            staff_id=user.id,
            patient_id=request.patient_id,
            subject=("rights_request", request.id),
            ip=ip,
        )
        raise ActionRefused(Reason.NOT_A_PRIVACY_OFFICER)
    if request.requested_by_id == user.id:
        raise ActionRefused(Reason.OWN_REQUEST)
    if request.state is not RightsState.PENDING:
        raise ActionRefused(Reason.NOT_PENDING)


def _apply_correction(patient: Patient, changes: dict[str, str]) -> None:
    for name, value in changes.items():
        if name == "birth_date":
            patient.birth_date = date.fromisoformat(value)
        elif name == "sex":
            patient.sex = Sex(value)
        else:
            setattr(patient, name, value)  # the validators re-index phone and ID number


def do_approve(
    session: Session,
    *,
    request: RightsRequest,
    user: StaffUser,
    now: datetime,
    note: str = "",
    ip: str | None = None,
) -> dict[str, Any]:
    """Carry the request out. Holds are checked again: one that arose since it was asked refuses the
    approval (raises HeldRefusal) and leaves the request pending."""
    _check_decider(session, request, user, ip)
    patient = session.get(Patient, request.patient_id)
    assert patient is not None
    holds = _current_holds(session, patient.id, request.kind, now)
    if holds:
        audit.record(
            session,
            "rights.approve_held",
            staff_id=user.id,
            patient_id=patient.id,
            subject=("rights_request", request.id),
            ip=ip,
            holds=[h.value for h in holds],
        )
        raise HeldRefusal(holds)
    counts: dict[str, Any] = {}
    if request.kind is RightsKind.CORRECTION:
        changes = changes_of(request)
        _apply_correction(patient, changes)
        counts = {"fields": sorted(changes)}
    else:
        mrn_bidx = patient.mrn_bidx  # before the wipe replaces it: the tombstone names the old row
        counts = wipe_patient(session, patient, request.kind)
        write_tombstone(session, patient, mrn_bidx, request.kind, request.id, now)
        request.changes = None
    request.state = RightsState.APPLIED
    request.decided_by_id, request.decided_at = user.id, now
    request.decision_note = note.strip()[:MAX_NOTE] or None
    audit.record(
        session,
        "rights.applied",
        staff_id=user.id,
        patient_id=patient.id,
        subject=("rights_request", request.id),
        ip=ip,
        kind=request.kind.value,
        counts=counts,
    )
    return counts


def do_reject(
    session: Session,
    *,
    request: RightsRequest,
    user: StaffUser,
    now: datetime,
    note: str,
    ip: str | None = None,
) -> None:
    """Refuse the request, with the reason the patient will be told."""
    _check_decider(session, request, user, ip)
    text = note.strip()
    if not text:
        raise ActionRefused(Reason.REASON_REQUIRED)
    if len(text) > MAX_NOTE:
        raise ActionRefused(Reason.REASON_LENGTH)
    request.state = RightsState.REJECTED
    request.decided_by_id, request.decided_at, request.decision_note = user.id, now, text
    request.changes = None  # the proposed values are not kept once refused
    audit.record(
        session,
        "rights.rejected",
        staff_id=user.id,
        patient_id=request.patient_id,
        subject=("rights_request", request.id),
        ip=ip,
        kind=request.kind.value,
    )


# --- the list -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    request: RightsRequest
    requested_by: str
    decided_by: str


def request_rows(
    session: Session, *, state: RightsState | None = None, kind: RightsKind | None = None, limit: int = 500
) -> list[RequestRow]:
    requester = sa.orm.aliased(StaffUser)
    decider = sa.orm.aliased(StaffUser)
    query = (
        sa.select(RightsRequest, requester.display_name, decider.display_name)
        .join(requester, requester.id == RightsRequest.requested_by_id)
        .outerjoin(decider, decider.id == RightsRequest.decided_by_id)
        .order_by(RightsRequest.created_at.desc(), RightsRequest.id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(RightsRequest.state == state)
    if kind is not None:
        query = query.where(RightsRequest.kind == kind)
    return [RequestRow(r, a or "", b or "") for r, a, b in session.execute(query)]
