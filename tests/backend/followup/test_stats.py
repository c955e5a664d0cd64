"""Follow-up statistics and the Excel export, on both databases."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of, do_publish
from backend.followup.responses import do_complete_response, do_save_answers, do_start_response
from backend.followup.stats import Filters, GroupBy, follow_up_report
from backend.models import (
    Department,
    Encounter,
    EncounterKind,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    Role,
)
from bots.domain import Channel
from tests import factories
from tests.backend.security.test_staff_auth import sign_in


def texts(en: str) -> dict[str, str]:
    return {"en": en, "zh-CN": f"{en}（中）", "vi": f"{en} (vi)"}


FIVE = [{"code": f"s{n}", "score": n, "text": texts(f"{n} points")} for n in (1, 2, 3, 4, 5)]
SURVEY: dict[str, Any] = {
    "id": "sat",
    "version": 1,
    "kind": "satisfaction",
    "title": texts("Satisfaction"),
    "items": [
        {
            "id": "env",
            "type": "single_choice",
            "dimension": "environment",
            "text": texts("Ward"),
            "options": FIVE,
        },
        {
            "id": "att",
            "type": "single_choice",
            "dimension": "attitude",
            "text": texts("Staff"),
            "options": FIVE,
        },
        {"id": "rec", "type": "scale", "min": 0, "max": 10, "text": texts("Recommend?")},
        {"id": "pain", "type": "scale", "min": 0, "max": 10, "statistics": False, "text": texts("Pain")},
    ],
    "scores": [
        {
            "id": "nps",
            "items": ["rec"],
            "text": texts("NPS"),
            "bands": [
                {"code": "detractor", "min": 0, "max": 6, "text": texts("Detractor")},
                {"code": "passive", "min": 7, "max": 8, "text": texts("Passive")},
                {"code": "promoter", "min": 9, "max": 10, "text": texts("Promoter")},
            ],
        }
    ],
    "rules": [
        {
            "id": "unhappy",
            "when": {"item": "att", "op": "=", "value": "s1"},
            "severity": "normal",
            "text": texts("Very dissatisfied with staff"),
        }
    ],
}
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)


def _world(db: Session) -> tuple[Department, Department]:
    version = do_publish(db, SURVEY)
    cardio, ortho = factories.department(db), factories.department(db)
    plan = FollowUpPlan(name="p", questionnaire_id="sat", offsets_days=[3, 15], channels=["webchat"])
    db.add(plan)
    db.flush()
    q = definition_of(version)

    def discharge(dept: Department, day: int) -> Encounter:
        patient = factories.patient(db)
        return factories.encounter(db, patient, dept, started=START + timedelta(days=day - 3))

    def task(enc: Encounter, offset: int, status: OutreachStatus, sent: bool = True) -> OutreachTask:
        row = OutreachTask(
            plan_id=plan.id,
            patient_id=enc.patient_id,
            encounter_id=enc.id,
            department_id=enc.department_id,
            questionnaire_id="sat",
            offset_days=offset,
            due_at=START + timedelta(days=10 + offset),
            next_attempt_at=START,
            status=status,
            last_sent_at=START if sent else None,
            last_channel=Channel.WEBCHAT if sent else None,
        )
        db.add(row)
        db.flush()
        return row

    def answer(row: OutreachTask, answers: dict[str, Any]) -> None:
        response = do_start_response(
            db,
            version=version,
            patient_id=row.patient_id,
            channel=Channel.WEBCHAT,
            language="en",
            task=row,
            now=START + timedelta(days=12),
        )
        do_save_answers(db, response, q, answers)
        do_complete_response(db, response, now=START + timedelta(days=12))

    # Cardiology: one admission followed up twice (counts once), one lost, one cancelled.
    twice = discharge(cardio, 5)
    first, second = task(twice, 3, OutreachStatus.SENT), task(twice, 15, OutreachStatus.SENT)
    answer(first, {"env": "s5", "att": "s1", "rec": 10, "pain": 9})
    answer(second, {"env": "s4", "att": "s4", "rec": 9})
    task(discharge(cardio, 6), 3, OutreachStatus.LOST)
    task(discharge(cardio, 7), 3, OutreachStatus.CANCELLED, sent=False)
    # Orthopaedics: one reached and answered (a detractor), one scheduled, one discharge never planned.
    answer(task(discharge(ortho, 5), 3, OutreachStatus.SENT), {"env": "s2", "att": "s3", "rec": 3})
    task(discharge(ortho, 8), 3, OutreachStatus.SCHEDULED, sent=False)
    discharge(ortho, 9)
    factories.encounter(db, factories.patient(db), ortho, kind=EncounterKind.OUTPATIENT)  # not a discharge
    db.commit()
    return cardio, ortho


def test_counts_and_rates_per_department(db: Session) -> None:
    cardio, ortho = _world(db)
    report = follow_up_report(db, Filters(START, END), GroupBy.DEPARTMENT)
    rows = {r.key: r for r in report.rows}
    c, o = rows[cardio.name], rows[ortho.name]
    assert (c.due, c.reached, c.completed, c.lost, c.cancelled, c.abnormal) == (4, 3, 2, 1, 1, 1)
    assert (o.due, o.reached, o.completed, o.lost, o.cancelled, o.abnormal) == (2, 1, 1, 0, 0, 0)
    assert c.response_rate == pytest.approx(2 / 3) and c.loss_rate == pytest.approx(1 / 3)
    assert c.abnormal_rate == pytest.approx(1 / 2) and o.loss_rate == 0


def test_discharge_follow_up_rate_counts_an_admission_once(db: Session) -> None:
    _world(db)
    report = follow_up_report(db, Filters(START, END))
    # discharges: cardio 3, ortho 3 (the outpatient visit is not one); followed up: cardio 1, ortho 1
    assert (report.discharges, report.discharges_followed_up) == (6, 2)
    assert report.discharge_follow_up_rate == pytest.approx(2 / 6)


def test_satisfaction_by_dimension_and_nps(db: Session) -> None:
    _world(db)
    report = follow_up_report(db, Filters(START, END))
    assert report.satisfaction == {
        "attitude": pytest.approx((1 + 4 + 3) / 3, abs=0.01),
        "environment": pytest.approx((5 + 4 + 2) / 3, abs=0.01),
    }
    assert report.nps_n == 3 and report.nps == pytest.approx(100 * (2 - 1) / 3, abs=0.1)


def test_filters_restrict_to_a_department_and_period(db: Session) -> None:
    cardio, _ = _world(db)
    only = follow_up_report(db, Filters(START, END, department_ids=frozenset({cardio.id})))
    assert [r.key for r in only.rows] == [cardio.name] and only.discharges == 3
    empty = follow_up_report(db, Filters(END, END + timedelta(days=30)))
    assert empty.rows == [] and empty.discharges == 0 and empty.discharge_follow_up_rate is None


@pytest.mark.parametrize("group_by", list(GroupBy))
def test_every_grouping_adds_up_to_the_same_totals(db: Session, group_by: GroupBy) -> None:
    _world(db)
    rows = follow_up_report(db, Filters(START, END), group_by).rows
    assert sum(r.due for r in rows) == 6 and sum(r.completed for r in rows) == 3


def test_excel_export_carries_the_filters_and_figures(client: TestClient, db: Session) -> None:
    cardio, _ = _world(db)
    factories.staff(db, username="nurse1", departments=[cardio])
    db.commit()
    sign_in(client, "nurse1")
    response = client.get("/staff/stats.xlsx", params={"start": "2026-11-01", "end": "2026-12-01"})
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book["Follow-up"]
    values = [_trimmed([c.value for c in row]) for row in sheet.iter_rows()]
    assert values[1] == ["Departments", cardio.name]  # a nurse sees her own department only
    data = {row[0]: row for row in values if row and row[0] == cardio.name}
    assert data[cardio.name][1:6] == [4, 3, 2, 1, 1]
    assert all(not row or row[0] != "Department 2" for row in values)
    assert ["Discharges", 3] in values


def _trimmed(row: list[Any]) -> list[Any]:
    """A sheet row without the empty cells openpyxl pads it with up to the widest row."""
    while row and row[-1] is None:
        row.pop()
    return row


def test_stats_page_is_scoped_for_a_nurse(client: TestClient, db: Session) -> None:
    cardio, ortho = _world(db)
    factories.staff(db, username="nurse1", departments=[cardio])
    factories.staff(db, username="boss", role=Role.MANAGER)
    db.commit()
    encounters = db.scalar(sa.select(sa.func.count()).select_from(Encounter))
    sign_in(client, "nurse1")
    page = client.get("/staff/stats", params={"start": "2026-11-01", "end": "2026-12-01"}).text
    assert cardio.name in page and ortho.name not in page.split('id="stats"')[1]
    forbidden = client.get(
        "/staff/stats", params={"start": "2026-11-01", "end": "2026-12-01", "department": ortho.id}
    ).text
    assert "No follow-ups in this period." in forbidden
    client.cookies.clear()
    sign_in(client, "boss")
    page = client.get("/staff/stats", params={"start": "2026-11-01", "end": "2026-12-01"}).text
    assert cardio.name in page and ortho.name in page.split('id="stats"')[1]
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Encounter)) == encounters  # views write nothing
