"""Whether an outbox item may go now: consent, exclusion lists, reachability, quiet hours, frequency cap.

The facts are loaded for a whole chunk of items in a few queries (`load_facts`); `judge` is then a plain
function of the item, the patient and those facts. The sender judges real outbox items; a batch preview
judges `Probe`s (the item a batch would queue) with the same functions, so what a preview counts is what
the sender will do, at the time it is asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.eligibility import Contactable, channel_address, global_level, quiet_until
from backend.models import (
    ConsentEvent,
    ContactLimit,
    Encounter,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    StaffUser,
    VoiceCall,
)
from backend.models.base import among
from backend.outbox.limits import Level, Quiet, Rules
from backend.services.consents import consent_allows
from bots.domain import Channel, ConsentPurpose

SENT_STATES = (OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.READ)


class Action(StrEnum):
    SEND = "send"
    DEFER = "defer"  # not now: try again at `until`
    SUPPRESS = "suppress"  # never: the patient said no, is excluded or cannot be reached


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str | None = None
    until: datetime | None = None


GO = Verdict(Action.SEND)


class Gated(Protocol):
    """What the gates read of an item: an `OutboxItem`, or a `Probe` of one not queued yet."""

    @property
    def patient_id(self) -> int | None: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def kind(self) -> OutboxKind: ...
    @property
    def purpose(self) -> ConsentPurpose: ...


@dataclass(frozen=True, slots=True)
class Probe:
    """The outbox item a batch would queue for a patient, judged before it exists."""

    patient_id: int
    channel: Channel
    purpose: ConsentPurpose
    kind: OutboxKind = OutboxKind.OUTREACH


@dataclass
class Facts:
    """What the gates need to know about the patients of a chunk of items."""

    consent: dict[tuple[int, ConsentPurpose, Channel], bool] = field(default_factory=dict)  # latest event
    sent: dict[tuple[int, Channel], list[datetime]] = field(default_factory=lambda: defaultdict(list))
    rules: Rules = field(default_factory=Rules)  # the hospital's and departments' quiet hours and caps
    departments: dict[int, int] = field(default_factory=dict)  # patient -> her latest visit's department


def counted_contact(now: datetime) -> list[sa.ColumnElement[bool]]:
    """The outbox items the frequency cap counts: outreach sent in the last day. A preview that counts
    them in SQL (`backend.audiences.preview`) uses these conditions, so both count the same."""
    return [
        OutboxItem.kind == OutboxKind.OUTREACH,
        OutboxItem.status.in_(SENT_STATES),
        OutboxItem.sent_at > now - timedelta(days=1),
    ]


def latest_consent(purpose: ConsentPurpose, channel: Channel) -> sa.Select[int, bool]:
    """(patient_id, granted) of each patient's latest consent event for one purpose and channel: what
    `load_facts` keeps per patient (ordered by id, the latest wins), as SQL."""
    latest_ids = (
        sa.select(sa.func.max(ConsentEvent.id))
        .where(ConsentEvent.purpose == purpose, ConsentEvent.channel == channel)
        .group_by(ConsentEvent.patient_id)
    )
    return sa.select(ConsentEvent.patient_id, ConsentEvent.granted).where(ConsentEvent.id.in_(latest_ids))


def _level(row: ContactLimit) -> Level:
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None:
        quiet = Quiet(row.quiet_start, row.quiet_end)
    return Level(quiet, row.daily_cap)


def load_rules(session: Session) -> Rules:
    """The quiet hours and caps set in the admin console (a handful of rows)."""
    hospital, departments = Level(), {}
    for row in session.scalars(sa.select(ContactLimit)):
        if row.department_id is None:
            hospital = _level(row)
        else:
            departments[row.department_id] = _level(row)
    return Rules(hospital, departments)


def latest_department() -> sa.ScalarSelect[int]:
    """A patient's department for her department's rules: that of her latest visit (correlated to
    `Patient.id`, for previews that group patients in SQL)."""
    return (
        sa.select(Encounter.department_id)
        .where(Encounter.patient_id == Patient.id)
        .order_by(Encounter.started_at.desc(), Encounter.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def load_facts(session: Session, items: Iterable[Gated], now: datetime) -> Facts:
    items = list(items)
    patient_ids = sorted({item.patient_id for item in items if item.patient_id is not None})
    facts = Facts()
    if not patient_ids:
        return facts
    facts.rules = load_rules(session)
    if facts.rules.by_department:
        for patient_id, department_id in session.execute(
            sa.select(Encounter.patient_id, Encounter.department_id)
            .where(among(session, Encounter.patient_id, patient_ids))
            .order_by(Encounter.started_at, Encounter.id)
        ):
            facts.departments[patient_id] = department_id  # ordered by start: the latest wins
    for patient_id, purpose, channel, granted in session.execute(
        sa.select(ConsentEvent.patient_id, ConsentEvent.purpose, ConsentEvent.channel, ConsentEvent.granted)
        .where(among(session, ConsentEvent.patient_id, patient_ids))
        .order_by(ConsentEvent.id)
    ):
        facts.consent[(patient_id, purpose, channel)] = granted  # ordered by id: the latest wins
    if any(item.channel is Channel.VOICE for item in items):  # a call is contact too: count those placed
        for patient_id, placed_at in session.execute(
            sa.select(VoiceCall.patient_id, VoiceCall.placed_at).where(
                among(session, VoiceCall.patient_id, patient_ids),
                VoiceCall.placed_at > now - timedelta(days=1),
            )
        ):
            if placed_at is not None:
                facts.sent[(patient_id, Channel.VOICE)].append(placed_at)
    for recipient_id, channel, sent_at in session.execute(
        sa.select(OutboxItem.patient_id, OutboxItem.channel, OutboxItem.sent_at).where(
            among(session, OutboxItem.patient_id, patient_ids), *counted_contact(now)
        )
    ):
        if sent_at is not None and recipient_id is not None:
            facts.sent[(recipient_id, channel)].append(sent_at)
    return facts


def consent_given(facts: Facts, patient_id: int, purpose: ConsentPurpose, channel: Channel) -> bool:
    return consent_allows(purpose, facts.consent.get((patient_id, purpose, channel)))


def judge(item: Gated, patient: Contactable, facts: Facts, now: datetime) -> Verdict:
    """Checked when the item is due, not when it was queued: the world may have changed since.
    A SEND verdict for outreach counts against the frequency cap of later items in the same chunk."""
    if item.kind is OutboxKind.EMERGENCY:
        # Guidance answering a red flag the patient just wrote: consent, exclusions, quiet hours and caps
        # protect patients from us, not from help they need now. Only an address we cannot reach stops it.
        if channel_address(patient, item.channel) is None:
            return Verdict(Action.SUPPRESS, "unreachable")
        return GO
    if patient.deceased:
        return Verdict(Action.SUPPRESS, "excluded:deceased")
    if item.kind is OutboxKind.OUTREACH:
        # Replies answer a patient who just wrote to us; starting contact is what these lists forbid.
        for flag in ("do_not_disturb", "dispute"):
            if getattr(patient, flag):
                return Verdict(Action.SUPPRESS, f"excluded:{flag}")
    if channel_address(patient, item.channel) is None:
        return Verdict(Action.SUPPRESS, "unreachable")
    if not consent_given(facts, patient.id, item.purpose, item.channel):
        return Verdict(Action.SUPPRESS, "no_consent")
    if item.kind is OutboxKind.REPLY:
        return GO
    # the strictest of the global setting, the hospital's and her department's rules, in her own zone
    limits = facts.rules.limits(global_level(), facts.departments.get(patient.id))
    quiet = quiet_until(patient, now, limits)
    if quiet is not None:
        return Verdict(Action.DEFER, "quiet_hours", quiet)
    recent = sorted(facts.sent[(patient.id, item.channel)])
    cap = limits.cap
    if len(recent) >= cap:
        return Verdict(Action.DEFER, "frequency_cap", recent[len(recent) - cap] + timedelta(days=1))
    facts.sent[(patient.id, item.channel)].append(now)
    return GO


def staff_address(staff: StaffUser, channel: Channel) -> str | None:
    """Her own address on the channel: her mobile for SMS, her bound openid on WeChat."""
    return {Channel.SMS: staff.phone, Channel.WECHAT: staff.wechat_openid}.get(channel)


def judge_staff(staff: StaffUser | None, channel: Channel = Channel.SMS) -> Verdict:
    """An alert to a staff member's own phone or WeChat: hers to receive while she is an active user with
    an address on that channel; the hospital's rules for contacting patients do not apply."""
    if staff is None or not staff.active:
        return Verdict(Action.SUPPRESS, "unknown_staff")
    if not staff_address(staff, channel):
        return Verdict(Action.SUPPRESS, "unreachable")
    return GO


def judge_unlinked(item: Gated, window_open: bool) -> Verdict:
    """An item with no patient: only the bot's reply to a WeChat follower not yet linked, inside the
    48-hour window of the follower's own message. There is no consent on record to check: the follower
    started the exchange, and nothing but replies to it (emergency guidance among them) may go."""
    if item.kind not in (OutboxKind.REPLY, OutboxKind.EMERGENCY) or item.channel is not Channel.WECHAT:
        return Verdict(Action.SUPPRESS, "unknown_patient")
    if not window_open:
        return Verdict(Action.SUPPRESS, "window_closed")
    return GO
