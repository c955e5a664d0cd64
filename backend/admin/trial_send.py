"""A test send from the channels page: a message to the signed-in staff member's own phone or WeChat,
queued in the outbox and sent by the sender like any other (gates, adapter, attempts), so what the page
shows is what the real path did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.i18n import translations
from backend.models import OutboxAttempt, OutboxItem, StaffUser
from backend.outbox.enqueue import STAFF_ALERT_CHANNELS, do_enqueue_staff_alert
from backend.outbox.gates import staff_address
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason
from bots.domain import Channel


@dataclass(frozen=True)
class TrialSend:
    outbox_id: int
    channel: Channel
    status: str
    reason: str | None
    last_error: str | None
    attempts: list[tuple[str, str | None, int | None]]  # outcome, code, milliseconds


def own_channels(staff: StaffUser) -> list[tuple[Channel, bool]]:
    """The channels a test send can use, and whether she has an address there."""
    return [(channel, bool(staff_address(staff, channel))) for channel in STAFF_ALERT_CHANNELS]


def do_test_send(
    session: Session, staff: StaffUser, channel: Channel, *, ip: str | None, now: datetime
) -> int:
    """Queue the test message; the caller sends it after the commit. A channel without her address is
    queued too: the gates then say so, as they would for anyone."""
    if channel not in STAFF_ALERT_CHANNELS:
        raise ActionRefused(Reason.CHANNEL_NOT_SUPPORTED)
    text = translations(staff.language).gettext("CareLoop test message from %(hospital)s.") % {
        "hospital": get_settings().hospital_name
    }
    item = do_enqueue_staff_alert(session, staff=staff, text=text, channel=channel, now=now)
    audit.record(
        session, "admin.test_send", staff_id=staff.id, ip=ip, channel=channel.value, outbox_id=item.id
    )
    return item.id


def trial_result(session: Session, staff_id: int, outbox_id: int) -> TrialSend | None:
    """Her own test send's outcome (None for anyone else's item)."""
    item = session.get(OutboxItem, outbox_id)
    if item is None or item.to_staff_id != staff_id:
        return None
    attempts = [
        (a.outcome.value, a.code, a.duration_ms)
        for a in session.scalars(
            sa.select(OutboxAttempt).where(OutboxAttempt.outbox_id == item.id).order_by(OutboxAttempt.id)
        )
    ]
    return TrialSend(item.id, item.channel, item.status.value, item.reason, item.last_error, attempts)
