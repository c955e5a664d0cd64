"""Binding a WeChat follower to a patient (phone + birth date, or an SMS code) and department QR scenes.

Every failure a follower can cause looks the same from outside (no match, wrong birth date, unknown
phone, wrong/expired/locked code), and failures are throttled per follower, so the form cannot be used
to learn which phone numbers the hospital has.

The code SMS is queued as OUTREACH with purpose CARE: the phone's owner did not write to us (REPLY would
skip the do-not-disturb list and quiet hours on the word of an unproven follower), and it is a service
message, not marketing, so an SMS STOP still silences it. A code held back until quiet time ends would
arrive expired, so none is queued during the patient's quiet hours; the page says so to everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.followup.eligibility import quiet_until
from backend.models import (
    BindAttempt,
    BindCode,
    BindMethod,
    BindOutcome,
    Conversation,
    Department,
    DepartmentLink,
    OutboxKind,
    Patient,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue
from backend.security.identifiers import InvalidPhoneNumber
from backend.services import audit
from backend.services.consents import do_record_pending_consents
from backend.services.conversations import get_or_create_conversation
from backend.services.patients import find_patient
from bots.domain import Channel, ConsentPurpose, pick_language
from bots.messages import Outbound, Text

log = logging.getLogger(__name__)
CODE_TTL = timedelta(minutes=10)
CODE_MAX_GUESSES = 5  # then the code is locked
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5  # per follower per window
MAX_CODE_REQUESTS = 3  # per follower per window
MAX_CODES_PER_PATIENT_DAY = 3  # whoever asks: a phone is not flooded with codes
DEPARTMENT_SCENE = "dept:"


class Throttled(Exception):
    """Too many tries from this follower; try again after the window."""


class BindRefused(Exception):
    """The bind would take over someone else's link; `key` is the catalogue message to show."""

    key = "wx.not_matched"


class OpenidBoundElsewhere(BindRefused):
    key = "wx.bound_elsewhere"


class PatientBoundElsewhere(BindRefused):
    key = "wx.patient_bound_elsewhere"


def openid_index(openid: str) -> str:
    """The blind index a WeChat openid is stored under (the same as inbound messages use)."""
    return Patient.openid_index(openid)


def _count(session: Session, bidx: str, outcome: BindOutcome, now: datetime) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(BindAttempt)
            .where(
                BindAttempt.openid_bidx == bidx,
                BindAttempt.outcome == outcome,
                BindAttempt.at > now - FAILURE_WINDOW,
            )
        )
        or 0
    )


def check_throttle(session: Session, openid: str, now: datetime | None = None) -> None:
    if _count(session, openid_index(openid), BindOutcome.FAILED, now or utcnow()) >= MAX_FAILURES:
        raise Throttled


def _attempt(session: Session, openid: str, method: BindMethod, outcome: BindOutcome, now: datetime) -> None:
    session.add(BindAttempt(openid_bidx=openid_index(openid), method=method, outcome=outcome, at=now))


def _match(session: Session, phone: str, birth_date: date | None) -> Patient | None:
    """The one patient with this phone (and birth date, when given); None for none or several."""
    query = sa.select(Patient).where(Patient.phone_bidx == Patient.phone_index(phone))
    if birth_date is None:
        found = session.scalars(query.limit(2)).all()
    else:
        # the birth date is encrypted: its plain year narrows in SQL, the full date is compared here
        query = query.where(Patient.birth_year == birth_date.year)
        found = [p for p in session.scalars(query) if p.birth_date == birth_date][:2]
    return found[0] if len(found) == 1 else None


def do_bind_by_birth_date(
    session: Session, *, openid: str, phone: str, birth_date: date, now: datetime | None = None
) -> Patient | None:
    """Bind when exactly one patient has this phone and birth date. None (a counted failure) otherwise.
    Raises InvalidPhoneNumber for input that is not a phone number (says nothing about our records)."""
    now = now or utcnow()
    check_throttle(session, openid, now)
    patient = _match(session, phone, birth_date)
    if patient is None:
        _attempt(session, openid, BindMethod.BIRTH_DATE, BindOutcome.FAILED, now)
        return None
    try:
        do_bind_wechat(session, patient_id=patient.id, openid=openid, method=BindMethod.BIRTH_DATE)
    except BindRefused:
        _attempt(session, openid, BindMethod.BIRTH_DATE, BindOutcome.FAILED, now)
        raise
    _attempt(session, openid, BindMethod.BIRTH_DATE, BindOutcome.BOUND, now)
    return patient


def _hash_code(code: str, salt: str) -> str:
    key = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(key, f"wechat-bind-code\x00{salt}\x00{code}".encode(), hashlib.sha256).hexdigest()


def _code_matches(row: BindCode, code: str) -> bool:
    salt, _, digest = row.code_hash.partition("$")
    return hmac.compare_digest(_hash_code(code.strip(), salt), digest)


def do_request_code(
    session: Session, *, openid: str, phone: str, birth_date: date | None = None, now: datetime | None = None
) -> int | None:
    """Queue a one-time code to the phone on the record when exactly one patient matches.

    Returns the outbox item id (commit, then `kick` it) or None when nothing was sent; the caller shows
    the same page either way. Raises Throttled when this follower asked too often or failed too often.
    """
    now = now or utcnow()
    check_throttle(session, openid, now)
    bidx = openid_index(openid)
    if _count(session, bidx, BindOutcome.CODE_REQUESTED, now) >= MAX_CODE_REQUESTS:
        raise Throttled
    _attempt(session, openid, BindMethod.SMS_CODE, BindOutcome.CODE_REQUESTED, now)
    patient = _match(session, phone, birth_date)
    if patient is None or patient.phone_bidx is None or quiet_until(patient, now) is not None:
        return None
    recent = session.scalar(
        sa.select(sa.func.count())
        .select_from(BindCode)
        .where(BindCode.patient_id == patient.id, BindCode.created_at > now - timedelta(days=1))
    )
    if (recent or 0) >= MAX_CODES_PER_PATIENT_DAY:
        log.info("bind code cap reached for patient %s", patient.id)
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(8)
    row = BindCode(
        openid_bidx=bidx,
        patient_id=patient.id,
        code_hash=f"{salt}${_hash_code(code, salt)}",
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    settings = get_settings()
    text = load_catalog(settings.content_dir, settings.hospital_name).text(
        pick_language(patient.language), "wx.code_sms", code=code
    )
    conversation = get_or_create_conversation(
        session, patient_id=patient.id, channel=Channel.SMS, address=patient.phone_bidx
    )
    item = do_enqueue(
        session,
        conversation=conversation,
        outbound=Outbound((Text(text),)),
        kind=OutboxKind.OUTREACH,
        purpose=ConsentPurpose.CARE,
        now=now,
    )
    row.outbox_item_id = item.id
    session.add(row)
    audit.record(session, "wechat.code_sent", patient_id=patient.id, subject=("outbox", item.id))
    return item.id


def do_verify_code(
    session: Session, *, openid: str, code: str, now: datetime | None = None
) -> Patient | None:
    """Bind with the follower's latest code. None (a counted failure) when it is wrong, used, expired or
    locked; the fifth wrong guess locks the code."""
    now = now or utcnow()
    check_throttle(session, openid, now)
    row = session.scalars(
        sa.select(BindCode)
        .where(BindCode.openid_bidx == openid_index(openid))
        .order_by(BindCode.created_at.desc(), BindCode.id.desc())
        .limit(1)
    ).first()
    usable = row is not None and row.used_at is None and row.locked_at is None and row.expires_at > now
    if row is None or not usable or not _code_matches(row, code):
        if row is not None and usable:
            row.attempts += 1
            if row.attempts >= CODE_MAX_GUESSES:
                row.locked_at = now
                audit.record(
                    session, "wechat.code_locked", patient_id=row.patient_id, subject=("code", row.id)
                )
        _attempt(session, openid, BindMethod.SMS_CODE, BindOutcome.FAILED, now)
        return None
    row.used_at = now
    try:
        patient = do_bind_wechat(
            session, patient_id=row.patient_id, openid=openid, method=BindMethod.SMS_CODE
        )
    except BindRefused:
        _attempt(session, openid, BindMethod.SMS_CODE, BindOutcome.FAILED, now)
        raise
    _attempt(session, openid, BindMethod.SMS_CODE, BindOutcome.BOUND, now)
    return patient


def do_bind_wechat(
    session: Session, *, patient_id: int, openid: str, method: BindMethod, scene: str | None = None
) -> Patient:
    """Set the patient's openid (audited), adopt the follower's anonymous WeChat conversations and link the
    departments whose QR codes the follower scanned (`scene` and any scans recorded before binding).

    Refuses an openid bound to another patient, and moving a bound patient to a new openid on a birth
    date alone (a phone and birth date are easier to know than to hold the phone)."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise BindRefused(f"no patient {patient_id}")
    bidx = openid_index(openid)
    other = session.scalars(
        sa.select(Patient.id).where(Patient.wechat_openid_bidx == bidx, Patient.id != patient_id)
    ).first()
    if other is not None:
        raise OpenidBoundElsewhere("this openid is bound to another patient")
    now = utcnow()
    if patient.wechat_openid_bidx != bidx:
        replaced = patient.wechat_openid_bidx is not None
        if replaced and method is not BindMethod.SMS_CODE:
            raise PatientBoundElsewhere("the patient is bound to another openid")
        patient.wechat_openid = openid
        session.flush()  # the unique index settles a race with another bind of the same openid
        anonymous = session.scalars(
            sa.select(Conversation).where(
                Conversation.channel == Channel.WECHAT,
                Conversation.patient_id.is_(None),
                Conversation.address == bidx,
            )
        )
        for conversation in anonymous:
            conversation.patient_id = patient.id
            conversation.reply_to = None  # the patient's own openid serves from now on
            do_record_pending_consents(session, conversation)
        audit.record(
            session,
            "wechat.bound",
            patient_id=patient.id,
            subject=("patient", patient.id),
            method=method.value,
            replaced=replaced,
            scene=scene,
        )
    if scene is not None:
        department = department_of_scene(session, scene)
        if department is not None:
            _link(session, department, patient.id, bidx, scene, now)
    pending = session.scalars(
        sa.select(DepartmentLink).where(
            DepartmentLink.openid_bidx == bidx, DepartmentLink.patient_id.is_(None)
        )
    ).all()
    for row in pending:
        department = session.get(Department, row.department_id)
        if department is not None:
            _link(session, department, patient.id, bidx, row.scene, now)
        if row.patient_id is None:  # the patient was already linked to that department
            session.delete(row)
    return patient


def department_of_scene(session: Session, scene: str) -> Department | None:
    """The department a `dept:<code>` QR scene names; None for other scenes and unknown codes."""
    if not scene.startswith(DEPARTMENT_SCENE):
        return None
    code = scene[len(DEPARTMENT_SCENE) :]
    return session.scalars(sa.select(Department).where(Department.code == code)).first()


def _link(
    session: Session, department: Department, patient_id: int, bidx: str, scene: str, now: datetime
) -> DepartmentLink:
    link = session.scalars(
        sa.select(DepartmentLink).where(
            DepartmentLink.department_id == department.id, DepartmentLink.patient_id == patient_id
        )
    ).first()
    if link is None:
        link = session.scalars(
            sa.select(DepartmentLink).where(
                DepartmentLink.department_id == department.id,
                DepartmentLink.openid_bidx == bidx,
                DepartmentLink.patient_id.is_(None),
            )
        ).first()
    if link is None:
        link = DepartmentLink(department_id=department.id, openid_bidx=bidx, scene=scene, scanned_at=now)
        session.add(link)
    if link.patient_id is None:
        link.patient_id, link.linked_at = patient_id, now
        session.flush()
        audit.record(
            session,
            "wechat.department_linked",
            patient_id=patient_id,
            subject=("department", department.id),
            scene=scene,
        )
    return link


def do_record_scan(
    session: Session, *, openid: str, scene: str, now: datetime | None = None
) -> DepartmentLink | None:
    """A follower scanned (or followed through) a QR code: link its department to the bound patient now,
    or remember the scan until the follower binds. For the FOLLOWED/SCANNED branch of inbound handling."""
    now = now or utcnow()
    department = department_of_scene(session, scene)
    if department is None:
        return None
    patient = find_patient(session, Channel.WECHAT, openid)
    bidx = openid_index(openid)
    if patient is not None:
        return _link(session, department, patient.id, bidx, scene, now)
    link = session.scalars(
        sa.select(DepartmentLink).where(
            DepartmentLink.department_id == department.id,
            DepartmentLink.openid_bidx == bidx,
            DepartmentLink.patient_id.is_(None),
        )
    ).first()
    if link is None:
        link = DepartmentLink(department_id=department.id, openid_bidx=bidx, scene=scene, scanned_at=now)
        session.add(link)
    link.scanned_at = now
    session.flush()
    return link


def linked_patient_ids(session: Session, department_id: int) -> list[int]:
    """Patients who bound through the department's QR code (for the staff side's department scope)."""
    return list(
        session.scalars(
            sa.select(DepartmentLink.patient_id)
            .where(DepartmentLink.department_id == department_id, DepartmentLink.patient_id.is_not(None))
            .order_by(DepartmentLink.patient_id)
        )
    )


def department_qr_url(department: Department, *, client: Any | None = None) -> str:
    """A permanent QR code whose scene binds a scanning follower to this department; returns its image URL.
    Calls WeChat (blocking): use from the CLI, a job or a thread, not on the event loop."""
    from channels.wechat_client import create_qr_code, make_client

    if client is None:
        from backend.outbox.overrides import effective_settings

        settings = effective_settings()  # the account's credentials as the admin console has them
        if not (settings.wechat_app_id and settings.wechat_app_secret):
            raise LookupError("WeChat: set CARELOOP_WECHAT_APP_ID and CARELOOP_WECHAT_APP_SECRET")
        client = make_client(
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            api_root=settings.wechat_api_root,
            redis_url=settings.redis_url,
            timeout=settings.send_timeout_seconds,
        )
    return create_qr_code(client, f"{DEPARTMENT_SCENE}{department.code}", expire_seconds=None)


def do_identify(
    session: Session,
    *,
    key: str,
    birth_date: date,
    phone: str | None = None,
    mrn: str | None = None,
    now: datetime | None = None,
) -> Patient | None:
    """The one patient with this phone (or MRN) and birth date, for registration in a chat flow.

    Failures count against `key` (the conversation's channel and address) and are throttled exactly
    like follower binds, and every failure looks the same. Raises Throttled."""
    now = now or utcnow()
    check_throttle(session, key, now)
    patient: Patient | None = None
    if phone is not None:
        try:
            patient = _match(session, phone, birth_date)
        except InvalidPhoneNumber:
            patient = None
    elif mrn is not None:
        by_mrn = session.scalars(
            sa.select(Patient).where(
                Patient.mrn_bidx == Patient.code_index("mrn", mrn), Patient.birth_year == birth_date.year
            )
        ).first()
        patient = by_mrn if by_mrn is not None and by_mrn.birth_date == birth_date else None
    _attempt(
        session, key, BindMethod.BIRTH_DATE, BindOutcome.FAILED if patient is None else BindOutcome.BOUND, now
    )
    return patient
