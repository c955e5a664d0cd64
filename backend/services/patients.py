"""Finding patients (name tokens, phone, MRN or ID number: blind indexes) within what staff may see."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import DepartmentLink, Encounter, Patient, PatientNameToken, StaffUser
from backend.models.base import utcnow
from backend.security.crypto import current_cipher
from backend.security.identifiers import InvalidPhoneNumber, name_tokens, normalise_name
from backend.security.permissions import Permission, may
from backend.services import audit
from bots.domain import Channel

# at most this many matches of a search are loaded to be put in name order (names decrypt in Python)
SEARCH_SORT_BOUND = 1000


def department_ids(user: StaffUser) -> set[int] | None:
    """None means every department."""
    return None if may(user, Permission.PATIENTS_ALL_DEPARTMENTS) else {d.id for d in user.departments}


def scoped_to_user(query: sa.Select[Any], user: StaffUser) -> sa.Select[Any]:
    """Restrict a query over patients to those with an encounter in the user's departments, or linked to
    one of them by scanning the department's WeChat QR code."""
    allowed = department_ids(user)
    return query if allowed is None else query.where(in_departments(allowed))


def in_departments(allowed: set[int]) -> sa.ColumnElement[bool]:
    """A patient with an encounter in one of these departments, or linked to one by its WeChat QR code
    (the rule staff lists and department-scoped FHIR clients share)."""
    visited = sa.select(Encounter.id).where(
        Encounter.patient_id == Patient.id, Encounter.department_id.in_(allowed)
    )
    linked = sa.select(DepartmentLink.id).where(
        DepartmentLink.patient_id == Patient.id, DepartmentLink.department_id.in_(allowed)
    )
    return sa.or_(sa.exists(visited), sa.exists(linked))


def name_matches(text: str) -> sa.ColumnElement[bool] | None:
    """Patients whose name is `text`, or has every word (every Chinese character pair) of it, compared
    through the blind indexes of patient_name_tokens: exact tokens, so 'Nguy' finds no 'Nguyen'."""
    tokens = name_tokens(text)
    if not tokens:
        return None
    cipher = current_cipher()
    whole = {cipher.blind_index("patient_name", t) for t in tokens if t.startswith("f:")}
    parts = {cipher.blind_index("patient_name", t) for t in tokens if not t.startswith("f:")}
    conditions: list[sa.ColumnElement[bool]] = [
        sa.exists().where(PatientNameToken.patient_id == Patient.id, PatientNameToken.token.in_(whole))
    ]
    if parts:
        having_all = (
            sa.select(PatientNameToken.patient_id)
            .where(PatientNameToken.token.in_(parts))
            .group_by(PatientNameToken.patient_id)
            .having(sa.func.count(sa.distinct(PatientNameToken.token)) == len(parts))
        )
        conditions.append(Patient.id.in_(having_all))
    return sa.or_(*conditions)


def by_name(patients: Iterable[Patient]) -> list[Patient]:
    """Patients in name order. Names are encrypted, so the database cannot order them: callers order
    in SQL by something plain, bound the rows, and sort here."""
    return sorted(patients, key=lambda p: (normalise_name(p.name), p.id))


def text_matches(text: str) -> sa.ColumnElement[bool]:
    """A name (whole, or whole words of it), or exactly an MRN, ID number or phone number, through the
    blind indexes."""
    by_token = name_matches(text)
    conditions = [
        *([by_token] if by_token is not None else []),
        Patient.mrn_bidx == Patient.code_index("mrn", text),
        Patient.id_number_bidx == Patient.code_index("id_number", text),
    ]
    with contextlib.suppress(InvalidPhoneNumber):  # not every search is a phone number
        conditions.append(Patient.phone_bidx == Patient.phone_index(text))
    return sa.or_(*conditions)


def search(session: Session, user: StaffUser, text: str, limit: int = 50) -> list[Patient]:
    text = text.strip()
    query = sa.select(Patient)
    if not text:
        # no name order without decrypting everyone: the newest patients first
        return list(session.scalars(scoped_to_user(query, user).order_by(Patient.id.desc()).limit(limit)))
    query = query.where(text_matches(text))
    # matches of a name search are few; a bound keeps a common word from loading everyone
    found = session.scalars(scoped_to_user(query, user).order_by(Patient.id).limit(SEARCH_SORT_BOUND))
    return by_name(found)[:limit]


def in_scope(session: Session, user: StaffUser, patient_id: int) -> bool:
    """The patient is within the user's departments (the rule lists and searches apply)."""
    query = scoped_to_user(sa.select(Patient.id).where(Patient.id == patient_id), user)
    return session.scalar(query) is not None


def may_view(session: Session, user: StaffUser, patient_id: int) -> bool:
    """Within her departments, or through her own unexpired break-glass grant for this one patient."""
    return in_scope(session, user, patient_id) or _grant(session, user, patient_id) is not None


def _grant(session: Session, user: StaffUser, patient_id: int) -> int | None:
    from backend.privacy.break_glass import active_grant

    return active_grant(session, user.id, patient_id, utcnow())


class AccessDenied(Exception):
    """The patient is outside the staff member's departments."""


def open_record(session: Session, user: StaffUser, patient_id: int, ip: str) -> Patient | None:
    """Every view of a record is audited, allowed or not."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return None
    if in_scope(session, user, patient_id):
        audit.record(session, "patient.view", staff_id=user.id, patient_id=patient_id, ip=ip)
        return patient
    grant = _grant(session, user, patient_id)
    if grant is None:
        audit.record(session, "patient.view_denied", staff_id=user.id, patient_id=patient_id, ip=ip)
        raise AccessDenied
    audit.record(session, "patient.view", staff_id=user.id, patient_id=patient_id, ip=ip, break_glass=grant)
    return patient


def address_index(channel: Channel, sender: str) -> str:
    """The blind index a channel's sender is stored under (never the number itself)."""
    return Patient.openid_index(sender) if channel is Channel.WECHAT else Patient.phone_index(sender)


def address_column(channel: Channel) -> sa.orm.InstrumentedAttribute[str | None]:
    """The patients column holding the blind index of a channel's sender (see address_index)."""
    return {
        Channel.SMS: Patient.phone_bidx,
        Channel.WHATSAPP: Patient.whatsapp_bidx,
        Channel.WECHAT: Patient.wechat_openid_bidx,
    }[channel]


def find_patient(session: Session, channel: Channel, sender: str) -> Patient | None:
    """The patient a channel identity (phone number, WhatsApp number, WeChat openid) is bound to."""
    column = address_column(channel)
    query = sa.select(Patient).where(column == address_index(channel, sender)).order_by(Patient.id).limit(1)
    return session.scalars(query).first()
