"""The batched visit verb leaves the database exactly as the single one does, visit by visit in order:
the same varied visits (new, updated, discharged and planned, cancelled, placeholders, unknown codes,
a visit twice in one batch, a visit of a merged patient) applied both ways, every affected table compared
by its natural keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_factory
from backend.app.settings import get_settings
from backend.integration.facts import CodedValue, EncounterFacts, Identifier, PatientFacts, VisitEvent
from backend.integration.merges import do_merge_patients
from backend.integration.records import IdentityConflict, Notes, do_apply_visit, do_upsert_patient
from backend.integration.visits import Visit, do_apply_visits
from backend.models import (
    AuditEvent,
    Clinician,
    ClinicianKind,
    CodeKind,
    CodeMapping,
    Department,
    EncounterKind,
    FollowUpPlan,
    Patient,
    Ward,
)
from backend.models.base import Base
from backend.security.audit_chain import mac_holds

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # fixed: the planner's window and due times follow it
DAY = timedelta(days=1)
SOURCE = "HIS"
TABLES = (
    "encounters", "encounter_identifiers", "outreach_tasks", "code_mappings", "departments", "wards",
    "clinicians", "patients", "patient_identifiers", "audit_events",
)  # fmt: skip
# written from the wall clock (or a sequence), not from the facts: equal only by chance either way
VOLATILE = {"id", "updated_at", "at", "first_seen", "last_seen", "mac"}  # an audit MAC covers ids and time


def _visit(number: str, **facts: Any) -> EncounterFacts:
    return EncounterFacts(visit=Identifier(number, SOURCE), **facts)


def _seed(db: Session) -> dict[str, int]:
    """Departments, a ward and a clinician; a mapped hospital code; four plans (one limited to a
    department, one to one a day, one sampling half); seven patients, one merged into another; and the
    visits the batch will change, made through the single verb."""
    cardiology = Department(code="0301", name="Cardiology", names={})
    neurology = Department(code="0302", name="Neurology", names={})
    db.add_all([cardiology, neurology])
    db.flush()
    db.add(Ward(code="W01", name="Ward 1", department_id=neurology.id, names={}))
    db.add(Clinician(code="DR1", name="Dr One", kind=ClinicianKind.DOCTOR, department_id=cardiology.id))
    db.add(
        CodeMapping(
            kind=CodeKind.DEPARTMENT, source=SOURCE, code="NEUR", target_id=neurology.id,
            first_seen=NOW - 30 * DAY, last_seen=NOW - 30 * DAY,
        )
    )  # fmt: skip
    common = {"questionnaire_id": "post_discharge", "channels": ["sms"], "send_hour": 10}
    db.add_all(
        [
            FollowUpPlan(name="all", offsets_days=[1, 7, 30], **common),
            FollowUpPlan(
                name="neurology", offsets_days=[3], department_ids=[neurology.id],
                encounter_kinds=["discharge"], **common,
            ),
            FollowUpPlan(name="one a day", offsets_days=[2], daily_limit=1, **common),
            FollowUpPlan(name="half", offsets_days=[5], sample_ratio=0.5, **common),
        ]
    )  # fmt: skip
    ids = {}
    for n in range(1, 8):
        facts = PatientFacts(identifiers=(Identifier(f"M{n}", SOURCE, "MR"),), name=f"Patient {n}")
        patient = do_upsert_patient(
            db, facts, source="test", default_language="zh-CN", default_timezone="Asia/Shanghai",
            region="CN", notes=Notes(),
        )  # fmt: skip
        ids[f"P{n}"] = patient.id
    existing = [
        ("P1", _visit("E1", kind=EncounterKind.INPATIENT, department=CodedValue("0301"),
                      started_at=NOW - 4 * DAY), VisitEvent.ADMIT),
        ("P2", _visit("E2", kind=EncounterKind.INPATIENT, department=CodedValue("0302"),
                      started_at=NOW - 9 * DAY, ended_at=NOW - 3 * DAY), VisitEvent.DISCHARGE),
        ("P3", _visit("E3", department=CodedValue("0301")), VisitEvent.UPDATE),
        ("P4", _visit("E4", kind=EncounterKind.INPATIENT, department=CodedValue("0301"),
                      started_at=NOW - 6 * DAY, ended_at=NOW - 2 * DAY), VisitEvent.DISCHARGE),
        ("P5", _visit("E5", kind=EncounterKind.OUTPATIENT, department=CodedValue("0302"),
                      started_at=NOW - 2 * DAY), VisitEvent.ADMIT),
        ("P7", _visit("M1", kind=EncounterKind.INPATIENT, department=CodedValue("0301"),
                      started_at=NOW - 5 * DAY), VisitEvent.ADMIT),
    ]  # fmt: skip
    for who, facts, event in existing:
        do_apply_visit(
            db, db.get_one(Patient, ids[who]), facts, event, at=NOW - 5 * DAY, source="test",
            mapping_source=SOURCE, notes=Notes(), now=NOW - DAY,
        )  # fmt: skip
    # P7 turns out to be P6: her visit (and her identifier) move to the survivor
    do_merge_patients(db, db.get_one(Patient, ids["P7"]), db.get_one(Patient, ids["P6"]), source="test")
    db.commit()
    return ids


def _visits(ids: dict[str, int]) -> list[Visit]:
    icd = (CodedValue("I10", "hypertension"), CodedValue("E11.9"))
    rows = [
        ("P1", _visit("N1", kind=EncounterKind.INPATIENT, department=CodedValue("0301"),
                      started_at=NOW - 3 * DAY, diagnoses=icd), VisitEvent.ADMIT),
        ("P2", _visit("N2", kind=EncounterKind.INPATIENT, department=CodedValue("0302"),
                      started_at=NOW - 8 * DAY, ended_at=NOW - DAY, diagnoses=icd[:1]), VisitEvent.DISCHARGE),
        ("P3", _visit("N3", kind=EncounterKind.INPATIENT, ward=CodedValue("W01"),
                      started_at=NOW - 6 * DAY), VisitEvent.DISCHARGE),
        ("P4", _visit("N4", kind=EncounterKind.INPATIENT, department=CodedValue("9999", "Unknown dept"),
                      started_at=NOW - 2 * DAY), VisitEvent.ADMIT),
        ("P5", _visit("N5", kind=EncounterKind.OUTPATIENT, ward=CodedValue("W99"),
                      attending_doctor=CodedValue("DR1"), started_at=NOW - DAY), VisitEvent.ADMIT),
        ("P5", _visit("N6", attending_doctor=CodedValue("DR9", "Dr Nine")), VisitEvent.UPDATE),
        ("P1", _visit("E1", ended_at=NOW - DAY), VisitEvent.DISCHARGE),
        ("P2", _visit("E2", ended_at=NOW - 2 * DAY), VisitEvent.DISCHARGE),
        ("P3", _visit("E3", kind=EncounterKind.INPATIENT, started_at=NOW - 10 * DAY), VisitEvent.ADMIT),
        ("P4", _visit("E4"), VisitEvent.CANCEL_DISCHARGE),
        ("P5", _visit("E5", started_at=NOW - 3 * DAY), VisitEvent.UPDATE),
        ("P6", _visit("M1", ended_at=NOW - DAY), VisitEvent.DISCHARGE),
        ("P1", _visit("N1", ended_at=NOW - DAY / 2, patient_class="I"), VisitEvent.DISCHARGE),
        ("P6", _visit("N7", kind=EncounterKind.INPATIENT, department=CodedValue("NEUR"), patient_class="I",
                      procedures=(CodedValue("0DTJ4ZZ"),), started_at=NOW - 7 * DAY,
                      ended_at=NOW - 4 * DAY), VisitEvent.DISCHARGE),
        ("P6", _visit("N8", kind=EncounterKind.INPATIENT, department=CodedValue("9999"),
                      started_at=NOW - 9 * DAY, ended_at=NOW - 5 * DAY), VisitEvent.DISCHARGE),
        ("P2", _visit("N9", kind=EncounterKind.OUTPATIENT, department=CodedValue("0301"),
                      started_at=NOW - 2 * DAY, ended_at=NOW - 2 * DAY), VisitEvent.DISCHARGE),
    ]  # fmt: skip
    return [Visit(ids[who], facts, event, NOW - DAY) for who, facts, event in rows]


def _snapshot(db: Session) -> dict[str, list[str]]:
    """Every row of the affected tables, ids replaced by what they name (visit numbers, MRNs, codes,
    plan names), sorted: the order rows were written in does not matter, what they say does."""
    db.flush()
    meta = Base.metadata.tables

    def names(table: str, *columns: str) -> dict[int, str]:
        query = sa.select(meta[table].c.id, *(meta[table].c[c] for c in columns))
        return {row[0]: ":".join(str(v) for v in row[1:]) for row in db.execute(query)}

    refs: dict[str, dict[int, str]] = {
        "encounter_id": names("encounter_identifiers", "visit_number"),
        "patient_id": names("patients", "mrn"),
        "department_id": names("departments", "code"),
        "ward_id": names("wards", "code"),
        "attending_doctor_id": names("clinicians", "code"),
        "plan_id": names("follow_up_plans", "name"),
    }
    visits = {
        row.id: refs["encounter_id"].get(row.id, "?")
        for row in db.execute(sa.select(meta["encounters"].c.id))
    }
    refs["encounter_id"] = {
        link.encounter_id: link.visit_number for link in db.execute(sa.select(meta["encounter_identifiers"]))
    }
    subjects = {"encounter": refs["encounter_id"], "patient": refs["patient_id"],
                "code_mapping": names("code_mappings", "kind", "code")}  # fmt: skip
    targets = {"department": refs["department_id"], "ward": refs["ward_id"],
               "doctor": refs["attending_doctor_id"]}  # fmt: skip
    snapshot: dict[str, list[str]] = {}
    for table in TABLES:
        rows = []
        for row in db.execute(sa.select(meta[table])).mappings():
            out = {k: v for k, v in row.items() if k not in VOLATILE}
            for column, named in refs.items():
                if out.get(column) is not None:
                    out[column] = named[out[column]]
            if table == "encounters":
                out["visit"] = visits[row["id"]]
            if table == "audit_events" and out["subject_id"] is not None:
                out["subject_id"] = subjects[out["subject_type"]][out["subject_id"]]
            if table == "code_mappings" and out["target_id"] is not None:
                out["target_id"] = targets[str(out["kind"])][out["target_id"]]
            rows.append(repr(sorted(out.items())))
        snapshot[table] = sorted(rows)
    return snapshot


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """The app's own session: its rollback undoes what a run wrote (the test observer's SQLite reads
    autocommit, so it could not), letting both runs start from the same seeded state."""
    with session_factory()() as session:
        yield session


def _rewind(db: Session) -> None:
    """Undo a run. PostgreSQL's sequences do not roll back: set them back too, so both runs give the
    same ids (the planner samples by encounter id)."""
    db.rollback()
    if db.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        db.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 (our table names)
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )
    db.commit()


def test_the_batched_visit_verb_writes_what_the_single_one_writes(session: Session) -> None:
    db = session
    ids = _seed(db)
    visits = _visits(ids)
    before = _snapshot(db)
    _rewind(db)

    for visit in visits:
        do_apply_visit(
            db, db.get_one(Patient, visit.patient_id), visit.facts, visit.event, at=visit.at,
            source="import:encounters", mapping_source=SOURCE, notes=Notes(), now=NOW,
        )  # fmt: skip
    one_by_one = _snapshot(db)
    _rewind(db)

    returned = do_apply_visits(db, visits, source="import:encounters", mapping_source=SOURCE, now=NOW)
    batched = _snapshot(db)
    # every audit row the batch inserted in one statement carries a MAC the sealer accepts
    key = get_settings().audit_key_bytes
    assert all(mac_holds(key, event) for event in db.scalars(sa.select(AuditEvent)))
    db.rollback()

    assert len(returned) == len(visits) and returned[0] == returned[12]  # N1 twice: one encounter
    for table in TABLES:
        assert batched[table] == one_by_one[table], table
    # the visits did change things (a comparison of two empty results would prove nothing)
    assert len(one_by_one["encounters"]) == len(before["encounters"]) + 9
    # one row a visit, and one a pending code
    assert len(one_by_one["audit_events"]) == len(before["audit_events"]) + len(visits) + 3
    assert len(one_by_one["outreach_tasks"]) > len(before["outreach_tasks"]) + 10
    pending = [row for row in one_by_one["code_mappings"] if "('target_id', None)" in row]
    assert len(pending) == 3  # 9999, W99, DR9: pending; DR1 matched by the clinician's code
    assert any("UNMAPPED" in row for row in one_by_one["departments"])
    assert any("discharge_cancelled" in row for row in one_by_one["outreach_tasks"])
    assert any("'follow_ups_moved': 6, 'follow_ups_planned': 0" in row for row in one_by_one["audit_events"])


def test_a_visit_number_of_another_patient_stops_the_batch_before_any_write(session: Session) -> None:
    db = session
    ids = _seed(db)
    before = _snapshot(db)
    visits = [
        Visit(ids["P1"], _visit("N1", department=CodedValue("0301")), VisitEvent.ADMIT, NOW),
        Visit(ids["P2"], _visit("E1", ended_at=NOW), VisitEvent.DISCHARGE, NOW),  # E1 is P1's
    ]
    with pytest.raises(IdentityConflict) as raised:
        do_apply_visits(db, visits, source="import:encounters", mapping_source=SOURCE, now=NOW)
    assert raised.value.about == "encounter"
    assert _snapshot(db) == before  # not even the first visit, nor a code mapping
    db.rollback()
