"""The listener end to end over a real socket: ACK codes, what lands in the database, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import (
    CodeKind,
    CodeMapping,
    Encounter,
    EncounterIdentifier,
    EncounterKind,
    FollowUpPlan,
    Hl7Message,
    Hl7Status,
    OutreachStatus,
    OutreachTask,
    Patient,
    PatientIdentifier,
    Sex,
)
from tests import factories
from tests.backend.integration.hl7_peer import MllpPeer, adt

Address = tuple[str, int]


def _patients(db: Session) -> list[Patient]:
    db.expire_all()
    return list(db.scalars(sa.select(Patient).order_by(Patient.id)))


def _message(db: Session, control_id: str) -> Hl7Message:
    db.expire_all()
    return db.scalars(sa.select(Hl7Message).where(Hl7Message.control_id == control_id)).one()


def test_admission_creates_the_patient_and_visit_and_is_acknowledged_aa(
    hl7_address: Address, db: Session
) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(adt("A01", "MSG0001"))
    assert (ack.code, ack.control_id) == ("AA", "MSG0001")
    assert ack.segments["MSH"][8].startswith("ACK^A01")
    [patient] = _patients(db)
    assert (patient.name, patient.sex, patient.birth_date.isoformat()) == (
        "Wei Zhang",
        Sex.MALE,
        "1965-03-17",
    )
    assert patient.mrn == "MRN0001" and patient.phone == "+8613800138000" and patient.language == "zh-CN"
    identifier = db.scalars(sa.select(PatientIdentifier)).one()
    assert (identifier.authority, identifier.value, identifier.type_code) == ("HOSP", "MRN0001", "MR")
    encounter = db.scalars(sa.select(Encounter)).one()
    assert encounter.kind is EncounterKind.INPATIENT and encounter.ended_at is None
    assert encounter.started_at == datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    assert encounter.primary_diagnosis == "I21.0"
    link = db.scalars(sa.select(EncounterIdentifier)).one()
    assert (link.authority, link.visit_number, link.placeholder) == ("HOSP", "V1001", False)
    row = _message(db, "MSG0001")
    assert (row.status, row.ack_code, row.message_type) == (Hl7Status.APPLIED, "AA", "ADT^A01")
    assert row.patient_id == patient.id and row.encounter_id == encounter.id
    assert row.payload == adt("A01", "MSG0001").encode()  # kept as received (sealed at rest)
    raw = db.execute(sa.text("SELECT payload FROM hl7_messages")).scalar_one()
    assert b"Zhang" not in bytes(raw)


def test_unknown_codes_become_pending_mappings_and_the_visit_is_still_kept(
    hl7_address: Address, db: Session
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert (
            peer.send(adt("A01", "M1", service="XYZ", location="W9^1^1", doctor="D7^Wang^Fang")).code == "AA"
        )
    pending = {(m.kind, m.code): m.target_id for m in db.scalars(sa.select(CodeMapping))}
    assert pending == {
        (CodeKind.DEPARTMENT, "XYZ"): None,
        (CodeKind.WARD, "W9"): None,
        (CodeKind.DOCTOR, "D7"): None,
    }
    encounter = db.scalars(sa.select(Encounter)).one()
    assert encounter.department.code == "UNMAPPED" and encounter.ward_id is None


def test_known_department_code_maps_by_itself(hl7_address: Address, db: Session) -> None:
    cardiology = factories.department(db, code="CARD")
    db.commit()
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "M1")).code == "AA"
    assert db.scalars(sa.select(Encounter)).one().department_id == cardiology.id


def test_resent_message_is_acknowledged_again_and_applied_once(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        first = peer.send(adt("A01", "DUP1", sent="20261201083500"))
        again = peer.send(adt("A01", "DUP1", sent="20261201090000"))  # a resend has a new MSH-7
    assert (first.code, again.code) == ("AA", "AA")
    assert len(_patients(db)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == 1


def test_same_key_with_other_content_is_held_and_answered_ae(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "K1")).code == "AA"
        held = peer.send(adt("A01", "K1", name="Li^Na"))
    assert (held.code, held.error_code, held.error_location) == ("AE", "205", "MSH^1^10")
    assert [p.name for p in _patients(db)] == ["Wei Zhang"]
    statuses = sorted(m.status for m in db.scalars(sa.select(Hl7Message)))
    assert statuses == [Hl7Status.APPLIED, Hl7Status.HELD]


def test_missing_patient_identifier_is_ae_naming_pid_3(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(adt("A01", "NOPID", mrn=None))
    assert (ack.code, ack.error_location, ack.error_code) == ("AE", "PID^1^3", "101")
    assert ack.segments["ERR"][1].startswith("PID^1^3^101")  # v2.3/2.4 receivers read ERR-1
    assert _patients(db) == []
    row = _message(db, "NOPID")
    assert (row.status, row.error_location) == (Hl7Status.INVALID, "PID-3")


def test_bad_birth_date_is_ae_naming_pid_7(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(adt("A04", "BADDATE", birth="19651340"))
    assert (ack.code, ack.error_location, ack.error_code) == ("AE", "PID^1^7", "102")
    assert _patients(db) == []


def test_discharge_without_visit_number_is_ae_naming_pv1_19(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(adt("A03", "NOVISIT", visit=None, discharge="20261205100000"))
    assert (ack.code, ack.error_location) == ("AE", "PV1^1^19")


def test_unknown_event_is_acknowledged_aa_as_ignored(hl7_address: Address, db: Session) -> None:
    oru = (
        "MSH|^~\\&|LAB|HOSP|CARELOOP|CARELOOP|20261201||ORU^R01|LAB1|P|2.5.1\r"
        "PID|1||X1^^^HOSP\rOBX|1|NM|GLU||5.4\r"
    )
    with MllpPeer(*hl7_address) as peer:
        ack = peer.send(oru)
        a60 = peer.send(adt("A60", "ALLERGY1"))
    assert (ack.code, ack.note, a60.code) == ("AA", "ignored", "AA")
    assert _patients(db) == []
    assert _message(db, "LAB1").status is Hl7Status.IGNORED


def _discharge_plan(db: Session) -> FollowUpPlan:
    department = factories.department(db, code="CARD")
    plan = FollowUpPlan(
        name="cardiology discharge",
        questionnaire_id="recovery",
        encounter_kinds=["discharge"],
        department_ids=[department.id],
        offsets_days=[1, 7],
        channels=["webchat"],
        send_hour=10,
    )
    db.add(plan)
    db.commit()
    return plan


def test_discharge_plans_follow_ups_at_once(hl7_address: Address, db: Session) -> None:
    _discharge_plan(db)
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "ADM1")).code == "AA"
        assert db.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 0
        ack = peer.send(adt("A03", "DIS1", discharge=now))
    assert ack.code == "AA"
    encounter = db.scalars(sa.select(Encounter)).one()
    assert encounter.kind is EncounterKind.DISCHARGE and encounter.ended_at is not None
    tasks = db.scalars(sa.select(OutreachTask).order_by(OutreachTask.offset_days)).all()
    assert [(t.offset_days, t.status, t.encounter_id) for t in tasks] == [
        (1, OutreachStatus.SCHEDULED, encounter.id),
        (7, OutreachStatus.SCHEDULED, encounter.id),
    ]
    assert "2 follow-ups planned" in _message(db, "DIS1").outcome


def test_discharge_before_admission_makes_a_placeholder_the_admission_fills(
    hl7_address: Address, db: Session
) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", discharge="20261205100000", admit="")).code == "AA"
        link = db.scalars(sa.select(EncounterIdentifier)).one()
        assert link.placeholder
        assert peer.send(adt("A01", "A1")).code == "AA"
    db.expire_all()
    link = db.scalars(sa.select(EncounterIdentifier)).one()
    encounter = db.scalars(sa.select(Encounter)).one()
    assert not link.placeholder
    assert encounter.started_at == datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    assert encounter.ended_at == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert encounter.kind is EncounterKind.DISCHARGE  # a late A01 does not re-open the stay


def test_death_puts_the_patient_on_the_deceased_list_and_cancels_follow_ups(
    hl7_address: Address, db: Session
) -> None:
    _discharge_plan(db)
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", discharge=now)).code == "AA"
        assert db.scalar(sa.select(sa.func.count()).select_from(OutreachTask)) == 2
        ack = peer.send(adt("A08", "U1", death=(now, "Y")))
    assert ack.code == "AA"
    [patient] = _patients(db)
    assert patient.deceased
    assert {t.status for t in db.scalars(sa.select(OutreachTask))} == {OutreachStatus.CANCELLED}


def test_discharge_disposition_of_death_counts_as_death(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", discharge="20261205100000", disposition="20")).code == "AA"
    assert _patients(db)[0].deceased


def test_cancelled_discharge_cancels_its_follow_ups_and_reopens_the_stay(
    hl7_address: Address, db: Session
) -> None:
    _discharge_plan(db)
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A03", "D1", discharge=now)).code == "AA"
        assert peer.send(adt("A13", "C1")).code == "AA"
    encounter = db.scalars(sa.select(Encounter)).one()
    assert encounter.ended_at is None and encounter.kind is EncounterKind.INPATIENT
    assert {t.closed_reason for t in db.scalars(sa.select(OutreachTask))} == {"discharge_cancelled"}


def test_person_events_update_the_patient_only(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A28", "P1", visit=None, patient_class="")).code == "AA"
        assert peer.send(adt("A31", "P2", name="Zhang^Weiwei", visit=None, patient_class="")).code == "AA"
    assert [p.name for p in _patients(db)] == ["Weiwei Zhang"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 0


def test_identifiers_of_two_patients_in_one_message_are_held(hl7_address: Address, db: Session) -> None:
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A28", "P1", mrn="A1", visit=None, patient_class="")).code == "AA"
        assert peer.send(adt("A28", "P2", mrn="B2", visit=None, patient_class="")).code == "AA"
        both = adt("A31", "P3", mrn="A1", visit=None, patient_class="").replace(
            "A1^^^HOSP^MR", "A1^^^HOSP^MR~B2^^^HOSP^MR"
        )
        ack = peer.send(both)
    assert (ack.code, ack.error_location) == ("AE", "PID^1^3")
    assert _message(db, "P3").status is Hl7Status.HELD


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
@pytest.mark.parametrize("version", ["2.3", "2.5.1", "2.8"])
def test_versions_and_segment_ends(hl7_address: Address, db: Session, version: str, end: str) -> None:
    with MllpPeer(*hl7_address) as peer:
        message = adt(
            "A04", f"V{version}", version=version, end=end, patient_class="O", extra=("PV2|||^Chest pain",)
        )
        assert peer.send(message).code == "AA"
    [patient] = _patients(db)
    assert patient.birth_date is not None and patient.birth_date.year == 1965
    assert db.scalars(sa.select(Encounter)).one().kind is EncounterKind.OUTPATIENT


def test_chinese_names_in_utf8_and_gb18030(hl7_address: Address, db: Session) -> None:
    utf8 = adt("A01", "CN1", mrn="C1", name="张^伟", visit="CV1").encode("utf-8")
    gb = adt("A01", "CN2", mrn="C2", name="欧阳^娜娜", visit="CV2", charset="GB 18030-2000").encode("gb18030")
    unnamed_gbk = adt("A01", "CN3", mrn="C3", name="李^明", visit="CV3", charset="").encode("gbk")
    with MllpPeer(*hl7_address) as peer:
        assert [peer.send(m).code for m in (utf8, gb, unnamed_gbk)] == ["AA", "AA", "AA"]
    assert [p.name for p in _patients(db)] == ["张伟", "欧阳娜娜", "李明"]
    assert _message(db, "CN2").charset == "gb18030"


def test_hl7_send_feeds_a_file_of_messages(
    hl7_address: Address, db: Session, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from backend.app.cli import main

    sample = Path(str(tmp_path)) / "adt.hl7"
    batch = (
        "BHS|^~\\&|HIS|HOSP\n"
        + adt("A01", "F1", end="\n")
        + "\n"
        + adt("A03", "F2", end="\n", discharge="20261205100000")
    )
    sample.write_bytes(b"\xef\xbb\xbf" + (batch + "BTS|2\n").encode())
    host, port = hl7_address
    assert main(["hl7-send", str(sample), "--host", host, "--port", str(port)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in out] == [["F1", "AA"], ["F2", "AA"]]
    assert db.scalars(sa.select(Encounter)).one().kind is EncounterKind.DISCHARGE


def test_a_message_refused_half_way_leaves_nothing_but_its_row(hl7_address: Address, db: Session) -> None:
    """The new patient is written before the visit is found to be another patient's: the whole message is
    rolled back and kept, held, with its error; a resend is answered the same without applying anything."""
    with MllpPeer(*hl7_address) as peer:
        assert peer.send(adt("A01", "OWNER", mrn="OWNER1", visit="V77")).code == "AA"
        stray = adt("A08", "STRAY", mrn="STRANGER1", name="Stray^Person", visit="V77", service="SURG")
        first, again = peer.send(stray), peer.send(stray)
    assert [(a.code, a.error_location) for a in (first, again)] == [("AE", "PV1^1^19")] * 2
    assert len(_patients(db)) == 1  # the stranger was rolled back with the rest
    row = _message(db, "STRAY")
    assert (row.status, row.error_location, row.patient_id, row.encounter_id) == (
        Hl7Status.HELD, "PV1-19", None, None,
    )  # fmt: skip
    assert db.scalar(sa.select(sa.func.count()).select_from(Hl7Message)) == 2
