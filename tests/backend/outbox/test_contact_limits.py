"""The hospital's and departments' quiet hours and caps: the sender and a batch preview defer the same
patients, the strictest level wins, and a department's rule touches only its own patients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin.channel_store import do_clear_limit, do_set_limit
from backend.audiences.preview import gate_counts
from backend.models import AuditEvent, ContactLimit, OutboxItem, OutboxKind, Patient
from backend.outbox.enqueue import do_enqueue
from backend.outbox.sender import send_item
from backend.services.conversations import get_or_create_conversation
from backend.services.refusal import ActionRefused
from bots.domain import Channel, ConsentPurpose
from bots.messages import Outbound, Text
from tests import factories
from tests.channels.fake_twilio import FakeTwilio
from tests.conftest import reset_caches

NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: outside the global 21-08


@pytest.fixture
def twilio(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        monkeypatch.setenv("CARELOOP_TWILIO_ACCOUNT_SID", fake.account_sid)
        monkeypatch.setenv("CARELOOP_TWILIO_AUTH_TOKEN", fake.auth_token)
        monkeypatch.setenv("CARELOOP_TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("CARELOOP_TWILIO_SMS_FROM", "+15005550006")
        reset_caches()
        yield fake
        reset_caches()


def _queue(db: Session, patient: Patient) -> int:
    conversation = get_or_create_conversation(db, patient_id=patient.id, channel=Channel.SMS, address="x")
    item = do_enqueue(
        db,
        conversation=conversation,
        outbound=Outbound((Text("How are you?"),)),
        kind=OutboxKind.OUTREACH,
        now=NOON,
    )
    db.commit()
    return item.id


def test_a_departments_midday_rest_defers_its_patients_only_in_sender_and_preview(
    twilio: FakeTwilio, db: Session
) -> None:
    admin = factories.staff(db, username="root")
    cardiology, surgery = factories.department(db), factories.department(db)
    resting = factories.patient(db, dept=cardiology)
    other = factories.patient(db, dept=surgery)
    do_set_limit(db, cardiology.id, "12", "14", "", by=admin.id, ip=None)
    db.commit()
    population = sa.select(Patient.id).where(Patient.id.in_([resting.id, other.id]))
    counts = gate_counts(db, population, Channel.SMS, ConsentPurpose.CARE, NOON)
    assert (counts.send, dict(counts.defer)) == (1, {"quiet_hours": 1})
    assert send_item(_queue(db, resting), NOON) == "deferred:quiet_hours"
    assert send_item(_queue(db, other), NOON) == "sent"
    db.expire_all()
    deferred = db.scalars(sa.select(OutboxItem).where(OutboxItem.patient_id == resting.id)).one()
    assert deferred.not_before == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # 14:00 Shanghai
    assert len(twilio.messages) == 1 and twilio.messages[0].params["To"] == other.phone


def test_the_lowest_cap_of_hospital_and_department_applies(twilio: FakeTwilio, db: Session) -> None:
    admin = factories.staff(db, username="root")
    cardiology = factories.department(db)
    patient = factories.patient(db, dept=cardiology)
    do_set_limit(db, None, "", "", "3", by=admin.id, ip=None)  # the hospital: 3 a day
    do_set_limit(db, cardiology.id, "", "", "1", by=admin.id, ip=None)  # cardiology: 1
    db.commit()
    assert send_item(_queue(db, patient), NOON) == "sent"
    assert send_item(_queue(db, patient), NOON + timedelta(minutes=1)) == "deferred:frequency_cap"
    do_clear_limit(db, cardiology.id, by=admin.id, ip=None)  # the hospital's 3 now
    db.commit()
    assert send_item(_queue(db, patient), NOON + timedelta(minutes=2)) == "sent"
    actions = list(db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("admin.contact%"))))
    assert actions == ["admin.contact_limit", "admin.contact_limit", "admin.contact_limit_clear"]


def test_a_level_never_relaxes_the_global_quiet_hours(twilio: FakeTwilio, db: Session) -> None:
    admin = factories.staff(db, username="root")
    patient = factories.patient(db)
    do_set_limit(db, None, "0", "0", "50", by=admin.id, ip=None)  # "no quiet hours", a higher cap
    db.commit()
    night = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    assert send_item(_queue(db, patient), night) == "deferred:quiet_hours"


@pytest.mark.parametrize(
    ("start", "end", "cap"), [("22", "", ""), ("24", "6", ""), ("x", "6", ""), ("", "", "0"), ("", "", "")]
)
def test_bad_limits_are_refused_and_nothing_is_stored(db: Session, start: str, end: str, cap: str) -> None:
    admin = factories.staff(db, username="root")
    with pytest.raises(ActionRefused):
        do_set_limit(db, None, start, end, cap, by=admin.id, ip=None)
    assert db.scalar(sa.select(sa.func.count()).select_from(ContactLimit)) == 0


def test_a_limit_for_a_missing_department_is_refused(db: Session) -> None:
    admin = factories.staff(db, username="root")
    with pytest.raises(ActionRefused) as refused:
        do_set_limit(db, 9999, "12", "14", "", by=admin.id, ip=None)
    assert refused.value.reason == "no_such_department"
