"""Whether a patient may be contacted now, on which channel: exclusions, consent, addresses, quiet hours."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import Encounter, EncounterKind
from bots.domain import Channel


class Contactable(Protocol):
    """What the contact rules read of a patient: a loaded `Patient`, or the few columns a preview loads
    for thousands of patients at once (`backend.audiences.recipients`)."""

    @property
    def id(self) -> int: ...
    @property
    def timezone(self) -> str: ...
    @property
    def deceased(self) -> bool: ...
    @property
    def dispute(self) -> bool: ...
    @property
    def do_not_disturb(self) -> bool: ...
    @property
    def invalid_contact(self) -> bool: ...
    @property
    def phone_bidx(self) -> str | None: ...
    @property
    def whatsapp_bidx(self) -> str | None: ...
    @property
    def wechat_openid_bidx(self) -> str | None: ...
    @property
    def email_bidx(self) -> str | None: ...
    @property
    def email_bounced(self) -> bool: ...


def channel_address(patient: Contactable, channel: Channel) -> str | None:
    """The patient's address on a channel (a blind index, never the number), or None if unreachable."""
    if channel is Channel.WEBCHAT:
        return f"web:{patient.id}"
    if patient.invalid_contact and channel in {Channel.SMS, Channel.VOICE, Channel.WHATSAPP}:
        return None
    if channel in {Channel.SMS, Channel.VOICE}:
        return patient.phone_bidx
    if channel is Channel.WHATSAPP:
        return patient.whatsapp_bidx
    if channel is Channel.EMAIL:  # a hard bounce stops email only: the phone may still ring
        return None if patient.email_bounced else patient.email_bidx
    return patient.wechat_openid_bidx


def quiet_until(patient: Contactable, now: datetime) -> datetime | None:
    """If it is quiet time where the patient lives (default 21:00-08:00), when it ends; else None."""
    settings = get_settings()
    start, end = time(settings.quiet_hours_start), time(settings.quiet_hours_end)
    zone = ZoneInfo(patient.timezone)
    local = now.astimezone(zone)
    if start == end:
        return None  # no quiet time configured
    quiet = (local.time() >= start or local.time() < end) if start > end else start <= local.time() < end
    if not quiet:
        return None
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)


def readmitted_since(session: Session, patient_id: int, since: datetime) -> bool:
    """In hospital again (an inpatient stay started after `since` and not ended)."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Encounter)
            .where(
                Encounter.patient_id == patient_id,
                Encounter.kind == EncounterKind.INPATIENT,
                Encounter.started_at > since,
                Encounter.ended_at.is_(None),
            )
        )
        != 0
    )
