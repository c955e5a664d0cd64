"""Factories for test data, written through the real models."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pyotp
from sqlalchemy.orm import Session

from backend.models import (
    Conversation,
    ConversationOwner,
    Department,
    Direction,
    Encounter,
    EncounterKind,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    Role,
    StaffUser,
    Task,
    TaskKind,
    TaskPriority,
)
from backend.models.base import utcnow
from backend.outbox.enqueue import do_enqueue
from backend.security.auth import hash_password
from backend.services.tasks import do_raise_task
from bots.domain import Channel
from bots.messages import Outbound, Text

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def department(session: Session, code: str | None = None) -> Department:
    n = next(_seq)
    dept = Department(code=code or f"D{n}", name=f"Department {n}", names={})
    session.add(dept)
    session.flush()
    return dept


def patient(
    session: Session,
    *,
    language: str = "en",
    phone: str | None = None,
    dept: Department | None = None,
    **kwargs: object,
) -> Patient:
    n = next(_seq)
    person = Patient(
        mrn=kwargs.pop("mrn", f"T{n:06d}"),
        name=kwargs.pop("name", f"Patient {n}"),
        language=language,
        timezone="Asia/Shanghai",
        phone=phone or f"+8613900{n:06d}",
        birth_date=kwargs.pop("birth_date", date(1960, 5, 17)),
        **kwargs,
    )
    session.add(person)
    session.flush()
    if dept is not None:
        encounter(session, person, dept)
    return person


def encounter(
    session: Session,
    person: Patient,
    dept: Department,
    *,
    kind: EncounterKind = EncounterKind.DISCHARGE,
    started: datetime | None = None,
) -> Encounter:
    started = started or utcnow() - timedelta(days=5)
    enc = Encounter(
        patient_id=person.id,
        kind=kind,
        department_id=dept.id,
        started_at=started,
        ended_at=started + timedelta(days=3),
        diagnoses=[{"system": "ICD-10", "code": "I10", "text": "HTN"}],
    )
    session.add(enc)
    session.flush()
    return enc


def staff(
    session: Session,
    *,
    username: str,
    role: Role = Role.NURSE,
    roles: set[str] | None = None,  # several roles; `role` is the usual single one
    totp: bool = False,
    departments: list[Department] | None = None,
) -> StaffUser:
    user = StaffUser(
        username=username,
        display_name=username.title(),
        roles=set(roles) if roles else {role},
        password_hash=hash_password(PASSWORD),
        totp_secret=pyotp.random_base32() if totp else None,
        language="en",
        departments=departments or [],
    )
    session.add(user)
    session.flush()
    return user


def conversation(session: Session, person: Patient | None, channel: Channel = Channel.SMS) -> Conversation:
    conv = Conversation(
        patient_id=person.id if person else None, channel=channel, address=f"addr-{next(_seq)}"
    )
    session.add(conv)
    session.flush()
    return conv


def outbox_item(
    session: Session,
    conv: Conversation,
    *,
    at: datetime | None = None,
    template_key: str | None = None,
    staff_id: int | None = None,
    status: OutboxStatus = OutboxStatus.PENDING,
    reason: str | None = None,
    attempts: int = 0,
    last_error: str | None = None,
) -> OutboxItem:
    """A message queued through the real outbox, then moved to `status` as the sender would."""
    item = do_enqueue(
        session,
        conversation=conv,
        outbound=Outbound(parts=(Text("Hello"),)),
        kind=OutboxKind.OUTREACH,
        template_key=template_key,
        staff_id=staff_id,
        now=at,
    )
    item.status, item.reason, item.attempts, item.last_error = status, reason, attempts, last_error
    session.flush()
    return item


def reply(session: Session, conv: Conversation, text: str, *, at: datetime | None = None) -> Message:
    """A patient's inbound message in the conversation."""
    message = Message(
        conversation_id=conv.id,
        channel=conv.channel,
        direction=Direction.INBOUND,
        status=MessageStatus.PROCESSED,
        text=text,
        created_at=at or utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def task(
    session: Session,
    *,
    kind: TaskKind = TaskKind.HANDOFF,
    priority: TaskPriority = TaskPriority.NORMAL,
    person: Patient | None = None,
    dept: Department | None = None,
    conv: Conversation | None = None,
    now: datetime | None = None,
) -> Task:
    """A task raised through the real verb; a hand-off points at `conv` and gives it to staff."""
    if conv is not None:
        conv.owner = ConversationOwner.STAFF
    return do_raise_task(
        session,
        kind=kind,
        priority=priority,
        title=f"{kind.value}:test",
        source=("conversation", conv.id) if conv is not None else ("response", next(_seq)),
        patient_id=person.id if person else (conv.patient_id if conv else None),
        department_id=dept.id if dept else None,
        now=now,
    )
