"""Patients' identifiers are encrypted at rest and still findable by phone and MRN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.models import ConsentEvent, Patient, Role
from backend.security.crypto import DecryptionError
from backend.services import patients as patient_service
from backend.services.consents import (
    consent_allows,
    current_consents,
    do_grant_consent,
    do_revoke_consent,
    has_consent,
)
from bots.domain import Channel, ConsentPurpose
from tests import factories


def test_identifiers_are_not_stored_in_plain_text(db: Session) -> None:
    factories.patient(
        db,
        phone="138 0013 8000",
        mrn="mrn-77",
        id_number="44010619900101123X",
        wechat_openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        whatsapp="+84 912 345 678",
    )
    db.commit()
    raw = db.execute(sa.text("SELECT * FROM patients")).mappings().one()
    dump = " ".join(str(v) for v in raw.values())
    for secret in ("13800138000", "MRN-77", "44010619900101123X", "oUpF8uMuAJO", "912345678"):
        assert secret not in dump
    assert raw["phone"].startswith("v2.")


def test_patient_is_found_by_phone_in_any_format_and_by_mrn(db: Session) -> None:
    admin = factories.staff(db, username="adm", role=Role.ADMIN)
    wanted = factories.patient(db, phone="+86 138 0013 8000", mrn="A100")
    factories.patient(db, phone="+86 139 0000 0000", mrn="A200")
    db.commit()
    db.expire_all()
    assert [p.id for p in patient_service.search(db, admin, "13800138000")] == [wanted.id]
    assert [p.id for p in patient_service.search(db, admin, "a100")] == [wanted.id]
    found = db.get(Patient, wanted.id)
    assert found is not None and found.phone == "+8613800138000" and found.mrn == "A100"


def test_mrn_is_unique_whatever_its_spelling(db: Session) -> None:
    factories.patient(db, mrn="A100")
    with pytest.raises(IntegrityError):
        factories.patient(db, mrn=" a 100 ")


def test_values_encrypted_under_another_key_are_refused_not_misread(db: Session) -> None:
    person = factories.patient(db, phone="13800138000")
    db.commit()
    other = "v1:" + "A" * 60
    db.execute(sa.text("UPDATE patients SET phone = :v WHERE id = :id"), {"v": other, "id": person.id})
    db.commit()
    db.expire_all()
    with pytest.raises(DecryptionError):
        db.scalars(sa.select(Patient).where(Patient.id == person.id)).one()


def test_datetimes_come_back_aware_in_utc(db: Session) -> None:
    person = factories.patient(db)
    shanghai = timezone(timedelta(hours=8))
    db.add(
        ConsentEvent(
            patient_id=person.id,
            purpose=ConsentPurpose.CARE,
            channel=Channel.SMS,
            granted=True,
            source="test",
            at=datetime(2026, 1, 1, 8, 0, tzinfo=shanghai),
        )
    )
    db.commit()
    db.expire_all()
    event = db.scalars(sa.select(ConsentEvent)).one()
    assert event.at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC) and event.at.tzinfo is not None


def test_naive_datetimes_are_refused(db: Session) -> None:
    person = factories.patient(db)
    db.add(
        ConsentEvent(
            patient_id=person.id,
            purpose=ConsentPurpose.CARE,
            channel=Channel.SMS,
            granted=True,
            source="test",
            at=datetime(2026, 1, 1, 8, 0),
        )
    )
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        db.flush()


def test_consent_is_per_purpose_and_channel_and_the_latest_event_wins(db: Session) -> None:
    person = factories.patient(db)
    do_grant_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="test"
    )
    do_grant_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.WECHAT, source="test"
    )
    do_revoke_consent(
        db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.SMS, source="sms:STOP"
    )
    db.commit()
    assert not has_consent(db, person.id, ConsentPurpose.CARE, Channel.SMS)
    assert has_consent(db, person.id, ConsentPurpose.CARE, Channel.WECHAT)
    assert not has_consent(db, person.id, ConsentPurpose.MARKETING, Channel.WECHAT)  # opt-in: never granted
    assert has_consent(db, person.id, ConsentPurpose.CARE, Channel.WHATSAPP)  # opt-out: never revoked
    now = current_consents(db, person.id)
    assert now[(ConsentPurpose.CARE, Channel.SMS)].source == "sms:STOP"
    history = db.scalar(sa.select(sa.func.count()).select_from(ConsentEvent))
    assert history == 3  # revocation adds a row; nothing is overwritten
    audit_rows = db.execute(sa.text("SELECT action FROM audit_events ORDER BY id")).scalars().all()
    assert audit_rows == ["consent.grant", "consent.grant", "consent.revoke"]


def test_nurse_search_is_scoped_to_her_departments(db: Session) -> None:
    cardio, ortho = factories.department(db), factories.department(db)
    nurse = factories.staff(db, username="n1", departments=[cardio])
    agent = factories.staff(db, username="a1", role=Role.SERVICE_AGENT)
    mine = factories.patient(db, name="Li Mine", dept=cardio)
    theirs = factories.patient(db, name="Li Theirs", dept=ortho)
    db.commit()
    assert [p.id for p in patient_service.search(db, nurse, "Li")] == [mine.id]
    assert {p.id for p in patient_service.search(db, agent, "Li")} == {mine.id, theirs.id}
    assert patient_service.may_view(db, nurse, mine.id) and not patient_service.may_view(db, nurse, theirs.id)


def test_name_search_treats_wildcards_literally(db: Session) -> None:
    admin = factories.staff(db, username="adm", role=Role.ADMIN)
    factories.patient(db, name="Wang Wei")
    db.commit()
    assert patient_service.search(db, admin, "%") == []
    assert patient_service.search(db, admin, "_") == []


@pytest.mark.parametrize(
    ("purpose", "latest", "allowed"),
    [
        (ConsentPurpose.CARE, None, True),
        (ConsentPurpose.CARE, True, True),
        (ConsentPurpose.CARE, False, False),
        (ConsentPurpose.MARKETING, None, False),
        (ConsentPurpose.MARKETING, True, True),
        (ConsentPurpose.MARKETING, False, False),
        (ConsentPurpose.RESEARCH, None, False),
        (ConsentPurpose.RESEARCH, True, True),
        (ConsentPurpose.RESEARCH, False, False),
    ],
)
def test_care_is_opt_out_and_marketing_and_research_are_opt_in(
    purpose: ConsentPurpose, latest: bool | None, allowed: bool
) -> None:
    assert consent_allows(purpose, latest) is allowed
