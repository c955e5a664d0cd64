"""Transfers, class changes, cancelled admissions and patient merges through the listener."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.integration.merges import resolve_patient_id
from backend.models import (
    ConsentEvent,
    Encounter,
    EncounterKind,
    FollowUpPlan,
    Hl7Message,
    OutreachStatus,
    OutreachTask,
    Patient,
    PatientIdentifier,
    PatientMerge,
)
from backend.services.consents import do_revoke_consent, has_consent
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.integration.hl7_peer import MllpPeer, adt

Address = tuple[str, int]


def test_transfer_moves_the_visit_to_the_new_ward(hl7_address: Address, db: Session) -> None:
    cardiology = factories.department(db, code="CARD")
    surgery = factories.department(db, code="SURG")
    db.commit()
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "A1")).code == "AA"
        assert peer.send(adt("A02", "T1", service="SURG", location="S2W^12^1")).code == "AA"
    encounter = db.scalars(sa.select(Encounter)).one()
    assert encounter.department_id == surgery.id != cardiology.id


def test_cancelled_transfer_puts_the_visit_back(hl7_address: Address, db: Session) -> None:
    cardiology = factories.department(db, code="CARD")
    factories.department(db, code="SURG")
    db.commit()
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "A1")).code == "AA"
        assert peer.send(adt("A02", "T1", service="SURG", location="S2W^12^1")).code == "AA"
        assert peer.send(adt("A12", "T2")).code == "AA"
    assert db.scalars(sa.select(Encounter)).one().department_id == cardiology.id


def test_class_change_from_outpatient_to_inpatient(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A04", "R1", patient_class="O")).code == "AA"
        assert peer.send(adt("A06", "C1", patient_class="I")).code == "AA"
    assert db.scalars(sa.select(Encounter)).one().kind is EncounterKind.INPATIENT


def test_update_changes_demographics_and_keeps_what_was_not_sent(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "A1")).code == "AA"
        assert peer.send(adt("A08", "U1", name="Zhang^Weiguo", birth="", phone="")).code == "AA"
    patient = db.scalars(sa.select(Patient)).one()
    assert patient.name == "Weiguo Zhang"
    assert patient.birth_date is not None and patient.phone == "+8613800138000"


def test_invalid_phone_is_set_aside_and_the_message_still_applied(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A28", "P1", phone="call the ward", visit=None, patient_class="")).code == "AA"
    patient = db.scalars(sa.select(Patient)).one()
    assert patient.phone is None
    assert "phone not stored" in db.scalars(sa.select(Hl7Message)).one().outcome


def test_cancelled_admission_removes_a_visit_without_follow_up_history(
    hl7_address: Address, db: Session
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "A1")).code == "AA"
        assert peer.send(adt("A11", "X1")).code == "AA"
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 1


def test_cancelled_registration_cancels_unsent_follow_ups_and_keeps_the_visit(
    hl7_address: Address, db: Session
) -> None:
    department = factories.department(db, code="CARD")
    db.add(
        FollowUpPlan(
            name="discharge", questionnaire_id="recovery", encounter_kinds=["discharge"],
            department_ids=[department.id], offsets_days=[1], channels=["webchat"], send_hour=10,
        )
    )  # fmt: skip
    db.commit()
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", discharge=now)).code == "AA"
        assert peer.send(adt("A11", "X1")).code == "AA"
    task = db.scalars(sa.select(OutreachTask)).one()
    assert (task.status, task.closed_reason) == (OutreachStatus.CANCELLED, "visit_cancelled")
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 1


def test_merge_moves_the_record_to_the_survivor_and_keeps_the_strictest_consent(
    hl7_address: Address, db: Session
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "A1", mrn="OLD1", visit="V1", phone="")).code == "AA"
        assert peer.send(adt("A01", "A2", mrn="NEW1", visit="V2", phone="")).code == "AA"
        old, survivor = db.scalars(sa.select(Patient).order_by(Patient.id)).all()
        old.wechat_openid = "o-old-openid"
        do_revoke_consent(
            db, patient_id=old.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="sms:STOP"
        )
        db.commit()
        merge = adt("A40", "M1", mrn="NEW1", visit=None, patient_class="", extra=("MRG|OLD1^^^HOSP^MR",))
        ack = peer.send(merge)
        assert ack.code == "AA", ack.text
        again = peer.send(adt("A08", "U1", mrn="OLD1", visit="V1"))  # the old number now names the survivor
        assert again.code == "AA"
    db.expire_all()
    assert resolve_patient_id(db, old.id) == survivor.id
    assert {e.patient_id for e in db.scalars(sa.select(Encounter))} == {survivor.id}
    assert {i.patient_id for i in db.scalars(sa.select(PatientIdentifier))} == {survivor.id}
    assert db.get(Patient, survivor.id).wechat_openid == "o-old-openid"  # type: ignore[union-attr]
    assert not has_consent(db, survivor.id, ConsentPurpose.CARE, Channel.SMS)
    assert (
        db.scalar(
            sa.select(sa.func.count()).select_from(ConsentEvent).where(ConsentEvent.patient_id == old.id)
        )
        == 0
    )
    assert db.scalars(sa.select(PatientMerge)).one().source == "hl7:A40"


def test_merge_without_mrg_is_ae_naming_mrg_1(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(adt("A40", "M1", visit=None, patient_class=""))
    assert (ack.code, ack.error_location) == ("AE", "MRG^1^1")


def test_messages_past_retention_are_purged_except_held_ones(hl7_address: Address, db: Session) -> None:
    from datetime import timedelta

    from backend.integration.upkeep import purge_hl7_messages
    from backend.models import Hl7Status

    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "K1")).code == "AA"
        assert peer.send(adt("A01", "K1", name="Li^Na")).code == "AE"  # held
        assert peer.send(adt("A08", "K2")).code == "AA"
    later = datetime.now(UTC) + timedelta(days=181)
    assert purge_hl7_messages(db, 180, now=later) == 2
    db.commit()
    assert [m.status for m in db.scalars(sa.select(Hl7Message))] == [Hl7Status.HELD]
    assert purge_hl7_messages(db, 180, now=datetime.now(UTC)) == 0


def test_mapping_a_pending_department_code_moves_its_visits_and_plans_them(
    hl7_address: Address, db: Session
) -> None:
    from backend.integration.codes import do_resolve_mapping
    from backend.models import CodeKind, CodeMapping

    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", service="0301", discharge=now)).code == "AA"
    cardiology = factories.department(db, code="CARD")
    db.add(
        FollowUpPlan(
            name="discharge", questionnaire_id="recovery", encounter_kinds=["discharge"],
            department_ids=[cardiology.id], offsets_days=[1], channels=["webchat"], send_hour=10,
        )
    )  # fmt: skip
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 0  # held in UNMAPPED
    mapping = db.scalars(
        sa.select(CodeMapping).where(CodeMapping.kind == CodeKind.DEPARTMENT, CodeMapping.code == "0301")
    ).one()
    assert do_resolve_mapping(db, mapping, cardiology.id, staff_id=None) == 1
    db.commit()
    assert db.scalars(sa.select(Encounter)).one().department_id == cardiology.id
    assert db.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 1
    with MllpPeer(*hl7_address) as peer:  # later messages with the code map at once
        assert peer.send(adt("A01", "A2", service="0301", mrn="M2", visit="V2")).code == "AA"
    db.expire_all()
    assert {e.department_id for e in db.scalars(sa.select(Encounter))} == {cardiology.id}


def test_held_message_is_applied_when_staff_reprocess_it(hl7_address: Address, db: Session) -> None:
    from backend.app.db import session_factory
    from backend.app.settings import get_settings
    from backend.integration.receiver import Receiver, ReceiverConfig
    from backend.models import Hl7Status

    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "K1")).code == "AA"
        assert peer.send(adt("A08", "K1", name="Zhang^Weiguo")).code == "AE"  # the engine reused K1
    held = db.scalars(sa.select(Hl7Message).where(Hl7Message.status == Hl7Status.HELD)).one()
    receiver = Receiver(session_factory(), ReceiverConfig.from_settings(get_settings()))
    assert receiver.reprocess(held.id, staff_id=None).status is Hl7Status.APPLIED
    db.expire_all()
    assert db.scalars(sa.select(Patient)).one().name == "Weiguo Zhang"
    with MllpPeer(*hl7_address) as peer:  # a resend of it is now answered from the applied row
        assert peer.send(adt("A08", "K1", name="Zhang^Weiguo")).code == "AA"


def test_message_log_filters_and_parsed_view(hl7_address: Address, db: Session) -> None:
    from backend.integration.message_log import LogFilter, list_messages, parsed_view
    from backend.models import AuditEvent, Hl7Status

    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "L1")).code == "AA"
        assert peer.send(adt("A01", "L2", mrn=None)).code == "AE"
        assert peer.send(adt("A03", "L3", discharge="20261205100000")).code == "AA"
    assert [m.control_id for m in list_messages(db, LogFilter())] == ["L3", "L2", "L1"]
    assert [m.control_id for m in list_messages(db, LogFilter(status=Hl7Status.INVALID))] == ["L2"]
    assert [m.control_id for m in list_messages(db, LogFilter(message_type="ADT^A03"))] == ["L3"]
    newest = list_messages(db, LogFilter(), limit=1)
    assert [m.control_id for m in list_messages(db, LogFilter(), before_id=newest[0].id)] == ["L2", "L1"]
    staff = factories.staff(db, username="integration")
    _row, segments = parsed_view(db, newest[0].id, staff_id=staff.id)
    assert segments is not None
    msh = dict(segments[0].fields)
    assert (msh["MSH-9"], msh["MSH-10"]) == ("ADT^A03^ADT_A03", "L3")
    assert dict(segments[2].fields)["PID-3"] == "MRN0001^^^HOSP^MR"
    assert db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "integration.message_view")).one()


def test_silent_feed_in_working_hours_raises_one_task_and_turns_the_probe_red(
    hl7_address: Address, db: Session, client: object
) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from backend.app.settings import get_settings
    from backend.integration.feed import check_feed, feed_status
    from backend.models import Task, TaskKind

    settings = get_settings()
    assert client.get("/healthz/hl7").json()["last_message_at"] is None  # type: ignore[attr-defined]
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "F1")).code == "AA"
    shanghai = ZoneInfo(settings.default_timezone)
    tomorrow = datetime.now(shanghai).date() + timedelta(days=1)
    at_ten = datetime.combine(tomorrow, datetime.min.time(), shanghai).replace(hour=10)
    at_night = at_ten.replace(hour=23)
    assert not feed_status(db, settings, at_night).alert  # silent at night: expected
    assert feed_status(db, settings, at_ten).alert
    task = check_feed(db, settings, at_ten)
    assert task is not None and task.kind is TaskKind.INTEGRATION
    assert check_feed(db, settings, at_ten + timedelta(minutes=5)) is None  # one open task is enough
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 1
    assert client.get("/healthz/hl7").status_code == 200  # type: ignore[attr-defined]  # just received


def test_corrected_discharge_time_moves_unsent_follow_ups(hl7_address: Address, db: Session) -> None:
    from datetime import timedelta

    department = factories.department(db, code="CARD")
    db.add(
        FollowUpPlan(
            name="discharge", questionnaire_id="recovery", encounter_kinds=["discharge"],
            department_ids=[department.id], offsets_days=[3], channels=["webchat"], send_hour=10,
        )
    )  # fmt: skip
    db.commit()
    now = datetime.now(UTC)
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", discharge=now.strftime("%Y%m%d%H%M%S+0000"))).code == "AA"
        first_due = db.scalars(sa.select(OutreachTask)).one().due_at
        earlier = (now - timedelta(days=1)).strftime("%Y%m%d%H%M%S+0000")
        assert peer.send(adt("A08", "U1", discharge=earlier)).code == "AA"
    db.expire_all()
    assert db.scalars(sa.select(OutreachTask)).one().due_at == first_due - timedelta(days=1)


def test_death_suppresses_queued_outreach_messages_in_the_same_transaction(
    hl7_address: Address, db: Session
) -> None:
    from backend.models import OutboxItem, OutboxStatus

    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A28", "P1", visit=None, patient_class="")).code == "AA"
        patient = db.scalars(sa.select(Patient)).one()
        item = factories.outbox_item(db, factories.conversation(db, patient))
        db.commit()
        now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
        assert peer.send(adt("A31", "P2", visit=None, patient_class="", death=(now, "Y"))).code == "AA"
    db.expire_all()
    suppressed = db.get(OutboxItem, item.id)
    assert suppressed is not None
    assert (suppressed.status, suppressed.reason) == (OutboxStatus.SUPPRESSED, "excluded:deceased")


def test_the_crash_hook_is_refused_in_production() -> None:
    import pytest
    from pydantic import ValidationError

    from backend.app.settings import Settings

    with pytest.raises(ValidationError, match="test hook"):
        Settings(
            env="production",
            database_url="postgresql+psycopg://u@db/careloop",
            public_url="https://followup.example.org",
            hl7_crash_after_commit="X1",
        )
