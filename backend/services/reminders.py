"""Appointment reminders (default 24 h and 2 h before) as outbox items due at their time.

The outbox decides at send time as for every message (consent, exclusions, quiet hours, caps). A
reminder that would fall in the patient's quiet hours is brought forward to just before they begin, as
a reminder deferred to 08:00 for an 08:30 visit would be useless. Moving or cancelling an appointment
suppresses its pending reminder items in the same transaction, so the sender never picks them up.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content.catalogue import current_catalog
from backend.followup.eligibility import channel_address, quiet_until
from backend.models import (
    Appointment,
    AppointmentReminder,
    ChannelPreference,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxKind,
    OutboxStatus,
    Patient,
    ReminderStatus,
    Slot,
)
from backend.outbox.enqueue import EXTERNAL, do_enqueue
from backend.services.booking_rules import reminder_plan
from backend.services.conversations import get_or_create_conversation
from bots.domain import Channel, pick_language
from bots.messages import Outbound, Text

REMINDER_CHANNELS = (Channel.WECHAT, Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)  # tried in this order


def reminder_channel(
    patient: Patient, booked_on: Channel, preferred: Channel | None = None
) -> tuple[Channel, str] | None:
    """The channel the patient prefers, else where they booked, else the first they can get (external
    channels only: the web chat has no way to reach a patient who is not on the page)."""
    order = tuple(c for c in (preferred, booked_on) if c in EXTERNAL) + REMINDER_CHANNELS
    for channel in order:
        assert channel is not None
        address = channel_address(patient, channel)
        if address is not None:
            return channel, address
    return None


def before_quiet_hours(due: datetime, patient: Patient) -> datetime:
    """`due`, or the last minute before the quiet period it falls in began (same zone rules as sends)."""
    if quiet_until(patient, due) is None:
        return due
    settings = get_settings()
    zone = ZoneInfo(patient.timezone)
    local = due.astimezone(zone)
    start = time(settings.quiet_hours_start)
    day = local.date() if local.time() >= start else local.date() - timedelta(days=1)
    moved = datetime.combine(day, start, tzinfo=zone) - timedelta(minutes=1)
    return moved.astimezone(due.tzinfo)


def describe(session: Session, slot: Slot, lang: str, zone: str) -> dict[str, str]:
    """The words a patient sees for a slot: doctor, department, site, local time (in `zone`)."""
    return {
        "doctor": slot.clinician.name_in(lang),
        "department": slot.department.name_in(lang),
        "site": slot.site.names.get(lang) or slot.site.name,
        "when": slot.starts_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M"),
    }


def _suppress(session: Session, item_id: int | None, reason: str) -> bool:
    """Stop a queued reminder: only a pending item can be stopped (one being handed over already went).
    Returns whether it was stopped."""
    if item_id is None:
        return False
    result = session.execute(
        sa.update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.SUPPRESSED, reason=reason)
        .execution_options(synchronize_session=False)
    )
    stopped = bool(result.rowcount)  # type: ignore[attr-defined]
    if stopped:
        session.execute(
            sa.update(Message)
            .where(
                Message.id
                == sa.select(OutboxItem.message_id).where(OutboxItem.id == item_id).scalar_subquery()
            )
            .values(status=MessageStatus.NOT_SENT)
            .execution_options(synchronize_session=False)
        )
    loaded = session.identity_map.get(session.identity_key(OutboxItem, item_id))
    if loaded is not None:
        session.expire(loaded)
    return stopped


def schedule_reminders(
    session: Session, appointment: Appointment, patient: Patient, now: datetime
) -> list[AppointmentReminder]:
    """Create or re-aim the appointment's reminders at its current time. Old pending items are stopped."""
    catalog = current_catalog(session)
    lang = pick_language(patient.language)
    slot = session.get(Slot, appointment.slot_id)
    assert slot is not None
    existing = {
        r.offset_minutes: r
        for r in session.scalars(
            sa.select(AppointmentReminder).where(AppointmentReminder.appointment_id == appointment.id)
        )
    }
    preference = session.get(ChannelPreference, patient.id)
    target = reminder_channel(patient, appointment.channel, preference.channel if preference else None)
    out = []
    for minutes, planned, _ in reminder_plan(appointment.starts_at, now):
        due = before_quiet_hours(planned, patient)
        reminder = existing.get(minutes)
        if reminder is not None:
            _suppress(session, reminder.outbox_item_id, "appointment_moved")
        status, channel, item_id = ReminderStatus.SKIPPED, None, None
        if due > now and target is None:
            status = ReminderStatus.UNREACHABLE
        elif due > now and target is not None:
            channel, address = target
            text = catalog.text(lang, "booking.reminder", **describe(session, slot, lang, patient.timezone))
            conversation = get_or_create_conversation(
                session, patient_id=patient.id, channel=channel, address=address
            )
            item = do_enqueue(
                session,
                conversation=conversation,
                outbound=Outbound((Text(text),)),
                kind=OutboxKind.OUTREACH,
                not_before=due,
                template_key="notice",
                template_vars={"text": text},
                now=now,
            )
            status, item_id = ReminderStatus.SCHEDULED, item.id
        if reminder is None:
            reminder = AppointmentReminder(appointment_id=appointment.id, offset_minutes=minutes)
            session.add(reminder)
        reminder.status, reminder.channel, reminder.outbox_item_id = status, channel, item_id
        reminder.due_at, reminder.updated_at = due, now
        out.append(reminder)
    session.flush()
    return out


def cancel_reminders(session: Session, appointment: Appointment, now: datetime) -> int:
    """Stop every reminder of a cancelled appointment that has not gone yet; returns how many."""
    stopped = 0
    for reminder in session.scalars(
        sa.select(AppointmentReminder).where(
            AppointmentReminder.appointment_id == appointment.id,
            AppointmentReminder.status == ReminderStatus.SCHEDULED,
        )
    ):
        if _suppress(session, reminder.outbox_item_id, "appointment_cancelled"):
            reminder.status, reminder.updated_at = ReminderStatus.CANCELLED, now
            stopped += 1
        # else it went already (sent, or being handed to the provider): its outbox item says how it went
    return stopped
