"""Appointment reminders through the real outbox and a local Twilio; .ics files from signed links."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, make_token
from backend.models import (
    Appointment,
    AppointmentReminder,
    ChannelPreference,
    Message,
    MessageStatus,
    OutboxItem,
    OutboxStatus,
    ReminderStatus,
)
from backend.outbox.sender import drain_outbox
from backend.services.booking import do_book, do_cancel, do_reschedule
from backend.services.calendar_ics import calendar_url
from backend.services.consents import do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.services import booking_data
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
WED_14 = datetime(2026, 12, 9, 6, 0, tzinfo=UTC)  # Wednesday 14:00 in Shanghai
THU_15 = datetime(2026, 12, 10, 7, 0, tzinfo=UTC)


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", "+15005550006")
        monkeypatch.setenv("CARELOOP_SEND_TIMEOUT_SECONDS", "2")
        reset_caches()
        yield fake
        reset_caches()


def _setup(
    *, sessions: tuple[tuple[str, str], ...] = (("14:00", "16:00"),), **patient: object
) -> tuple[booking_data.Clinic, int]:
    with session_scope() as session:
        clinic = booking_data.clinic(session, now=NOW, sessions=sessions, days=5)
        person = factories.patient(session, **patient)
        return clinic, person.id


def _book(clinic: booking_data.Clinic, patient_id: int, start: datetime, now: datetime = NOW) -> int:
    with session_scope() as session:
        slot = booking_data.slot_at(session, clinic, start)
        return do_book(
            session, patient_id=patient_id, slot_id=slot.id, channel=Channel.WEBCHAT, source="test", now=now
        ).id


def _reminders(db: Session, appointment_id: int) -> list[AppointmentReminder]:
    db.expire_all()
    return list(
        db.scalars(
            sa.select(AppointmentReminder)
            .where(AppointmentReminder.appointment_id == appointment_id)
            .order_by(AppointmentReminder.offset_minutes.desc())
        )
    )


def _item(db: Session, item_id: int | None) -> OutboxItem:
    assert item_id is not None
    item = db.get(OutboxItem, item_id)
    assert item is not None
    return item


def test_reminders_go_out_24_and_2_hours_before_by_sms(twilio: FakeTwilio, db: Session) -> None:
    clinic, patient = _setup(phone="+8613900000001")
    appointment = _book(clinic, patient, WED_14)
    day, two = _reminders(db, appointment)
    assert (day.offset_minutes, day.due_at, day.status, day.channel) == (
        1440,
        WED_14 - timedelta(hours=24),
        ReminderStatus.SCHEDULED,
        Channel.SMS,
    )
    assert (two.offset_minutes, two.due_at, two.status) == (
        120,
        WED_14 - timedelta(hours=2),
        ReminderStatus.SCHEDULED,
    )
    for reminder in (day, two):
        item = _item(db, reminder.outbox_item_id)
        assert (item.not_before, item.status, item.channel, item.patient_id) == (
            reminder.due_at,
            OutboxStatus.PENDING,
            Channel.SMS,
            patient,
        )
    assert drain_outbox(NOW).total() == 0 and twilio.messages == []  # not yet
    drain_outbox(day.due_at + timedelta(minutes=1))
    [first] = twilio.messages
    assert first.params["To"] == "+8613900000001"
    doctor = db.get(Appointment, appointment).slot.clinician.name  # type: ignore[union-attr]
    assert doctor in first.params["Body"] and "2026-12-09 14:00" in first.params["Body"]  # Shanghai time
    drain_outbox(two.due_at + timedelta(minutes=1))
    assert len(twilio.messages) == 2
    db.expire_all()
    assert {_item(db, r.outbox_item_id).status for r in (day, two)} == {OutboxStatus.SENT}


def test_rescheduling_moves_the_reminders(twilio: FakeTwilio, db: Session) -> None:
    clinic, patient = _setup()
    appointment = _book(clinic, patient, WED_14)
    old_items = [r.outbox_item_id for r in _reminders(db, appointment)]
    with session_scope() as session:
        target = booking_data.slot_at(session, clinic, THU_15).id
        do_reschedule(
            session,
            patient_id=patient,
            appointment_id=appointment,
            slot_id=target,
            channel=Channel.WEBCHAT,
            now=NOW,
        )
    day, two = _reminders(db, appointment)
    assert (day.due_at, two.due_at) == (THU_15 - timedelta(hours=24), THU_15 - timedelta(hours=2))
    assert {day.status, two.status} == {ReminderStatus.SCHEDULED}
    for old in old_items:
        item = _item(db, old)
        assert (item.status, item.reason) == (OutboxStatus.SUPPRESSED, "appointment_moved")
        message = db.get(Message, item.message_id)
        assert message is not None and message.status is MessageStatus.NOT_SENT
    assert [_item(db, r.outbox_item_id).not_before for r in (day, two)] == [day.due_at, two.due_at]
    drain_outbox(THU_15 - timedelta(hours=24) + timedelta(minutes=1))  # both old times have passed too
    [sent] = twilio.messages  # only the new 24-hour reminder, for Thursday
    assert "2026-12-10 15:00" in sent.params["Body"]


def test_a_cancelled_appointments_reminders_never_go_out(twilio: FakeTwilio, db: Session) -> None:
    clinic, patient = _setup()
    appointment = _book(clinic, patient, WED_14)
    with session_scope() as session:
        do_cancel(session, patient_id=patient, appointment_id=appointment, channel=Channel.WEBCHAT, now=NOW)
    reminders = _reminders(db, appointment)
    assert [r.status for r in reminders] == [ReminderStatus.CANCELLED, ReminderStatus.CANCELLED]
    for reminder in reminders:
        item = _item(db, reminder.outbox_item_id)
        assert (item.status, item.reason) == (OutboxStatus.SUPPRESSED, "appointment_cancelled")
    for when in (WED_14 - timedelta(hours=24), WED_14 - timedelta(hours=2), WED_14):
        drain_outbox(when + timedelta(minutes=1))
    assert twilio.messages == []


def test_cancelling_after_the_first_reminder_went_stops_only_the_second(
    twilio: FakeTwilio, db: Session
) -> None:
    clinic, patient = _setup()
    appointment = _book(clinic, patient, WED_14)
    after_first = WED_14 - timedelta(hours=24) + timedelta(minutes=1)
    drain_outbox(after_first)
    assert len(twilio.messages) == 1
    with session_scope() as session:
        do_cancel(
            session, patient_id=patient, appointment_id=appointment, channel=Channel.WEBCHAT, now=after_first
        )
    day, two = _reminders(db, appointment)
    assert (day.status, _item(db, day.outbox_item_id).status) == (ReminderStatus.SCHEDULED, OutboxStatus.SENT)
    assert (two.status, _item(db, two.outbox_item_id).status) == (
        ReminderStatus.CANCELLED,
        OutboxStatus.SUPPRESSED,
    )
    drain_outbox(WED_14 - timedelta(hours=2) + timedelta(minutes=1))
    assert len(twilio.messages) == 1


def test_the_outbox_gates_still_apply_to_reminders(twilio: FakeTwilio, db: Session) -> None:
    clinic, patient = _setup()
    appointment = _book(clinic, patient, WED_14)
    with session_scope() as session:
        do_revoke_consent(
            session, patient_id=patient, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
        )
    drain_outbox(WED_14 - timedelta(hours=24) + timedelta(minutes=1))
    assert twilio.messages == []
    day = _reminders(db, appointment)[0]
    assert _item(db, day.outbox_item_id).status is OutboxStatus.SUPPRESSED


def test_a_reminder_in_quiet_hours_comes_before_they_begin(db: Session) -> None:
    clinic, patient = _setup(sessions=(("08:00", "09:00"),))
    wed_08 = datetime(2026, 12, 9, 0, 0, tzinfo=UTC)  # 08:00 Shanghai: 2 hours before is 06:00, quiet
    day, two = _reminders(db, _book(clinic, patient, wed_08))
    assert day.due_at == wed_08 - timedelta(hours=24)  # Tuesday 08:00 is allowed
    assert two.due_at == datetime(2026, 12, 8, 12, 59, tzinfo=UTC)  # Tuesday 20:59 Shanghai


def test_short_notice_skips_the_reminder_whose_time_has_passed(db: Session) -> None:
    clinic, patient = _setup()
    monday_14 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # four hours after NOW
    day, two = _reminders(db, _book(clinic, patient, monday_14))
    assert (day.status, day.outbox_item_id) == (ReminderStatus.SKIPPED, None)
    assert two.status is ReminderStatus.SCHEDULED


def test_reminders_use_wechat_when_the_patient_follows_us_and_none_without_contact(db: Session) -> None:
    clinic, follower = _setup(wechat_openid="o-follower-1")
    assert {r.channel for r in _reminders(db, _book(clinic, follower, WED_14))} == {Channel.WECHAT}
    with session_scope() as session:
        unreachable = factories.patient(session)
        unreachable.phone = None
        session.flush()
        unreachable_id = unreachable.id
    reminders = _reminders(db, _book(clinic, unreachable_id, THU_15))
    assert [(r.status, r.outbox_item_id) for r in reminders] == [(ReminderStatus.UNREACHABLE, None)] * 2


def test_reminders_follow_the_channel_the_patient_prefers(db: Session) -> None:
    clinic, patient = _setup(whatsapp="+8613900000003")
    with session_scope() as session:
        session.add(ChannelPreference(patient_id=patient, channel=Channel.WHATSAPP, source="test"))
    assert {r.channel for r in _reminders(db, _book(clinic, patient, WED_14))} == {Channel.WHATSAPP}


def _ics(client: TestClient, token: str) -> Calendar:
    response = client.get(f"/a/{token}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def _event(calendar: Calendar) -> dict[str, object]:
    [event] = calendar.walk("VEVENT")
    return {
        "start": event.decoded("dtstart"),
        "end": event.decoded("dtend"),
        "uid": str(event["uid"]),
        "sequence": int(event["sequence"]),
        "status": str(event["status"]),
        "summary": str(event["summary"]),
        "location": str(event["location"]),
    }


def test_the_ics_file_has_the_appointment_in_utc_and_follows_changes(client: TestClient, db: Session) -> None:
    clinic, patient = _setup(language="zh-CN")
    appointment = _book(clinic, patient, WED_14)
    url = calendar_url(get_settings(), appointment)
    token = url.rsplit("/", 1)[1]
    event = _event(_ics(client, token))
    assert event["start"] == WED_14 and event["end"] == WED_14 + timedelta(minutes=30)
    assert event["start"].tzinfo is not None and event["start"].utcoffset() == timedelta(0)  # type: ignore[attr-defined]
    assert (event["sequence"], event["status"]) == (0, "CONFIRMED")
    assert "预约就诊" in str(event["summary"]) and "院区" in str(event["location"])  # the patient's language
    with session_scope() as session:
        target = booking_data.slot_at(session, clinic, THU_15).id
        do_reschedule(
            session,
            patient_id=patient,
            appointment_id=appointment,
            slot_id=target,
            channel=Channel.WEBCHAT,
            now=NOW,
        )
    moved = _event(_ics(client, token))
    assert (moved["start"], moved["uid"], moved["sequence"]) == (THU_15, event["uid"], 1)
    with session_scope() as session:
        do_cancel(session, patient_id=patient, appointment_id=appointment, channel=Channel.WEBCHAT, now=NOW)
    cancelled = _event(_ics(client, token))
    assert (cancelled["status"], cancelled["sequence"], cancelled["uid"]) == ("CANCELLED", 2, event["uid"])


def test_forged_other_purpose_unknown_and_expired_calendar_links_are_refused(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic, patient = _setup()
    appointment = _book(clinic, patient, WED_14)
    settings = get_settings()
    token = make_token(settings, LinkKind.CALENDAR, appointment)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    chat_token = make_token(settings, LinkKind.CHAT, appointment)  # same id, another purpose
    unknown = make_token(settings, LinkKind.CALENDAR, appointment + 1000)
    for bad in (forged, chat_token, unknown, "not-a-token"):
        response = client.get(f"/a/{bad}", headers={"Accept-Language": "en"})
        assert response.status_code == 404 and "not valid" in response.text
    long_ago = time.time() - (settings.calendar_link_days + 1) * 86400
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: long_ago)  # itsdangerous dates tokens with time.time()
        expired = make_token(settings, LinkKind.CALENDAR, appointment)
    response = client.get(f"/a/{expired}", headers={"Accept-Language": "vi"})
    assert response.status_code == 410 and "hết hạn" in response.text
    assert client.get(f"/a/{token}").status_code == 200
