"""Spot checks: a stable, reproducible sample of completed follow-ups; review with findings; call-backs;
quality statistics per department, responsible nurse and reviewer; supervisors only; both databases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of, do_publish
from backend.followup.responses import do_complete_response, do_save_answers, do_start_response
from backend.models import (
    AuditEvent,
    Clinician,
    ClinicianKind,
    Department,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    Role,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
    StaffUser,
    Task,
    TaskKind,
)
from backend.services import spot_checks
from backend.services.spot_checks import SpotCheckRefused, sample
from bots.domain import Channel
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.backend.security.test_staff_auth import _csrf, sign_in

DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


# --- the sample (pure) -----------------------------------------------------------------------------


def test_the_sample_is_stable_reproducible_and_sized_by_ratio_or_count() -> None:
    ids = list(range(1, 201))
    first = sample(ids, "seed-a", ratio=0.1)
    assert len(first) == 20 and first == sorted(first) and set(first) <= set(ids)
    assert sample(list(reversed(ids)), "seed-a", ratio=0.1) == first  # order of rows does not matter
    assert sample(ids, "seed-b", ratio=0.1) != first  # another seed, another sample
    assert len(sample(ids, "s", count=7)) == 7
    assert sample(ids[:3], "s", count=10) == [1, 2, 3]  # never more than there are
    assert len(sample(ids[:3], "s", ratio=0.1)) == 1  # rounded up: a small department still gets one
    # An id's rank does not depend on the others: of the original rows, a draw over more rows only
    # ever takes ones the smaller draw took too
    bigger = sample(ids + list(range(500, 700)), "seed-a", count=5)
    assert set(bigger) & set(ids) <= set(sample(ids, "seed-a", count=5))
    assert sample([], "s", ratio=0.5) == []


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({}, "ratio_or_count"),
        ({"ratio": 0.1, "count": 3}, "ratio_or_count"),
        ({"ratio": 0.0}, "ratio_range"),
        ({"ratio": 1.5}, "ratio_range"),
        ({"count": 0}, "count_range"),
        ({"count": 1001}, "count_range"),
    ],
)
def test_bad_sizes_are_refused(kwargs: dict[str, float], reason: str) -> None:
    with pytest.raises(SpotCheckRefused) as caught:
        sample([1, 2, 3], "s", **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == reason


# --- the world -------------------------------------------------------------------------------------


@dataclass
class World:
    cardio: Department
    ortho: Department
    manager: StaffUser
    admin: StaffUser
    nurse: StaffUser
    lin: Clinician
    tasks: list[OutreachTask]


def _world(db: Session, per_department: int = 5) -> World:
    cardio, ortho = factories.department(db), factories.department(db)
    manager = factories.staff(db, username="boss", role=Role.MANAGER, departments=[cardio])
    admin = factories.staff(db, username="admin2", role=Role.ADMIN)
    nurse = factories.staff(db, username="nurse1", departments=[cardio])
    lin = Clinician(kind=ClinicianKind.NURSE, department_id=cardio.id, name="Nurse Lin")
    db.add(lin)
    plan = FollowUpPlan(name="p", questionnaire_id="recovery", offsets_days=[3], channels=["webchat"])
    db.add(plan)
    db.flush()
    version = do_publish(db, DEFINITION)
    q = definition_of(version)
    tasks = []
    for dept in (cardio, ortho):
        for n in range(per_department):
            person = factories.patient(db, name=f"{dept.code} patient {n}")
            enc = factories.encounter(db, person, dept)
            enc.responsible_nurse_id = lin.id if dept is cardio else None
            task = OutreachTask(
                plan_id=plan.id,
                patient_id=person.id,
                encounter_id=enc.id,
                department_id=dept.id,
                questionnaire_id="recovery",
                offset_days=3,
                due_at=NOON,
                next_attempt_at=NOON,
                status=OutreachStatus.SENT,
            )
            db.add(task)
            db.flush()
            response = do_start_response(
                db,
                version=version,
                patient_id=person.id,
                channel=Channel.WEBCHAT,
                language="en",
                task=task,
                now=NOON,
            )
            do_save_answers(db, response, q, {"pain": 8 if n == 0 else 2, "fever": "no"}, now=NOON)
            do_complete_response(db, response, now=NOON + timedelta(hours=n))
            tasks.append(task)
    # one still open and one completed outside the period: never sampled
    person = factories.patient(db, name="Open one")
    enc = factories.encounter(db, person, cardio)
    db.add(
        OutreachTask(
            plan_id=plan.id,
            patient_id=person.id,
            encounter_id=enc.id,
            department_id=cardio.id,
            questionnaire_id="recovery",
            offset_days=3,
            due_at=NOON,
            next_attempt_at=NOON,
        )
    )
    db.commit()
    return World(cardio, ortho, manager, admin, nurse, lin, tasks)


def test_a_draw_takes_completed_follow_ups_of_the_department_and_period(db: Session) -> None:
    w = _world(db)
    check = spot_checks.do_draw(
        db, user=w.manager, department_id=w.cardio.id, start=DAY, end=DAY, count=3, seed="fixed"
    )
    db.commit()
    items = list(db.scalars(sa.select(SpotCheckItem).where(SpotCheckItem.spot_check_id == check.id)))
    cardio_ids = {t.id for t in w.tasks if t.department_id == w.cardio.id}
    assert len(items) == 3 and {i.outreach_task_id for i in items} <= cardio_ids
    assert check.population == 5 and all(i.response_id is not None for i in items)
    assert all(i.verdict is SpotVerdict.PENDING for i in items)
    again = spot_checks.do_draw(
        db, user=w.admin, department_id=w.cardio.id, start=DAY, end=DAY, count=3, seed="fixed"
    )
    same = {
        i.outreach_task_id
        for i in db.scalars(sa.select(SpotCheckItem).where(SpotCheckItem.spot_check_id == again.id))
    }
    assert same == {i.outreach_task_id for i in items}  # the same seed draws the same records
    everywhere = spot_checks.do_draw(db, user=w.manager, department_id=None, start=DAY, end=DAY, ratio=1.0)
    assert everywhere.population == 10 and len(everywhere.seed) == 16  # a random seed, kept
    with pytest.raises(SpotCheckRefused, match="nothing_to_sample"):
        spot_checks.do_draw(
            db,
            user=w.manager,
            department_id=None,
            start=DAY + timedelta(days=1),
            end=DAY + timedelta(days=2),
            ratio=0.5,
        )
    with pytest.raises(SpotCheckRefused, match="not_supervisor"):
        spot_checks.do_draw(db, user=w.nurse, department_id=None, start=DAY, end=DAY, ratio=0.5)
    with pytest.raises(SpotCheckRefused, match="period"):
        spot_checks.do_draw(
            db, user=w.manager, department_id=None, start=DAY, end=DAY - timedelta(days=1), ratio=0.5
        )
    draws = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "spot_check.draw")).all()
    assert [(a.staff_id, a.detail["sampled"]) for a in draws] == [
        (w.manager.id, 3),
        (w.admin.id, 3),
        (w.manager.id, 10),
    ]


def test_reviews_callbacks_and_quality_statistics(db: Session) -> None:
    w = _world(db, per_department=2)
    check = spot_checks.do_draw(db, user=w.manager, department_id=None, start=DAY, end=DAY, ratio=1.0)
    items = list(
        db.scalars(
            sa.select(SpotCheckItem)
            .where(SpotCheckItem.spot_check_id == check.id)
            .order_by(SpotCheckItem.department_id, SpotCheckItem.id)
        )
    )
    cardio_items = [i for i in items if i.department_id == w.cardio.id]
    ortho_items = [i for i in items if i.department_id == w.ortho.id]
    spot_checks.do_review(db, item=cardio_items[0], user=w.manager, verdict=SpotVerdict.PASSED, note="")
    spot_checks.do_review(
        db, item=cardio_items[1], user=w.admin, verdict=SpotVerdict.ISSUE, note="Pain 8 was not followed up"
    )
    spot_checks.do_review(db, item=ortho_items[0], user=w.manager, verdict=SpotVerdict.PASSED, note="ok")
    with pytest.raises(SpotCheckRefused, match="note"):  # an issue must say what
        spot_checks.do_review(db, item=ortho_items[1], user=w.manager, verdict=SpotVerdict.ISSUE, note=" ")
    with pytest.raises(SpotCheckRefused, match="not_supervisor"):
        spot_checks.do_review(db, item=ortho_items[1], user=w.nurse, verdict=SpotVerdict.PASSED, note="")
    task_id = spot_checks.do_request_callback(db, item=cardio_items[1], user=w.admin)
    assert spot_checks.do_request_callback(db, item=cardio_items[1], user=w.admin) == task_id  # once
    db.commit()
    task = db.get_one(Task, task_id)
    assert (task.kind, task.department_id, task.patient_id) == (
        TaskKind.CALLBACK,
        w.cardio.id,
        cardio_items[1].patient_id,
    )
    by_dept = {r.key: r for r in spot_checks.quality(db, by="department")}
    assert (
        by_dept[w.cardio.id].sampled,
        by_dept[w.cardio.id].reviewed,
        by_dept[w.cardio.id].passed,
        by_dept[w.cardio.id].issues,
        by_dept[w.cardio.id].pass_rate,
    ) == (2, 2, 1, 1, 0.5)
    assert (by_dept[w.ortho.id].reviewed, by_dept[w.ortho.id].pass_rate) == (1, 1.0)
    by_nurse = {r.name: r for r in spot_checks.quality(db, by="nurse")}
    assert (by_nurse["Nurse Lin"].sampled, by_nurse["Nurse Lin"].issues) == (2, 1)
    by_reviewer = {r.key: r for r in spot_checks.quality(db, by="reviewer")}
    assert (by_reviewer[w.manager.id].passed, by_reviewer[w.admin.id].issues) == (2, 1)
    assert by_reviewer[None].reviewed == 0  # the one not reviewed yet
    assert spot_checks.quality(db, by="department", start=DAY + timedelta(days=1)) == []


# --- the pages -------------------------------------------------------------------------------------


def test_a_manager_draws_reviews_and_calls_back_in_the_pages(client: TestClient, db: Session) -> None:
    w = _world(db, per_department=2)
    sign_in(client, "boss")
    index = client.get("/staff/spot-checks")
    assert index.status_code == 200
    bad = client.post(
        "/staff/spot-checks",
        data={
            "csrf_token": _csrf(index.text),
            "start": "2026-11-20",
            "end": "2026-11-20",
            "ratio": "",
            "count": "",
        },
    )
    assert bad.status_code == 400 and "Give either a percentage or a count." in bad.text
    drawn = client.post(
        "/staff/spot-checks",
        data={
            "csrf_token": _csrf(index.text),
            "start": "2026-11-20",
            "end": "2026-11-20",
            "department": str(w.cardio.id),
            "ratio": "50",
            "count": "",
        },
    )
    assert drawn.status_code == 200
    [item_id] = re.findall(r'data-item="(\d+)"', drawn.text)
    review = client.get(f"/staff/spot-checks/items/{item_id}")
    assert review.status_code == 200
    assert "Pain today?" in review.text and "Any fever?" in review.text and ">No<" in review.text
    saved = client.post(
        f"/staff/spot-checks/items/{item_id}/review",
        data={"csrf_token": _csrf(review.text), "verdict": "issue", "note": "No call after pain"},
    )
    assert saved.status_code == 200 and "No call after pain" in saved.text
    refused = client.post(
        f"/staff/spot-checks/items/{item_id}/review",
        data={"csrf_token": _csrf(review.text), "verdict": "issue", "note": ""},
    )
    assert refused.status_code == 400 and "Say what the issue is" in refused.text
    called = client.post(
        f"/staff/spot-checks/items/{item_id}/callback", data={"csrf_token": _csrf(review.text)}
    )
    assert called.status_code == 200 and "Callback task" in called.text
    db.expire_all()
    item = db.get_one(SpotCheckItem, int(item_id))
    assert (item.verdict, item.note, item.reviewer_id) == (
        SpotVerdict.ISSUE,
        "No call after pain",
        w.manager.id,
    )
    assert item.callback_task_id is not None
    views = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "spot_check.item_view")).all()
    assert views and all(v.patient_id == item.patient_id for v in views)
    stats = (
        client.get("/staff/spot-checks").text.split('id="quality-department"', 1)[1].split("</table>", 1)[0]
    )
    assert "0.0 %" in stats
    assert db.scalar(sa.select(sa.func.count()).select_from(SpotCheck)) == 1


def test_spot_checks_are_for_supervisors_only(client: TestClient, db: Session) -> None:
    w = _world(db, per_department=1)
    check = spot_checks.do_draw(db, user=w.manager, department_id=None, start=DAY, end=DAY, ratio=1.0)
    db.commit()
    sign_in(client, "nurse1")
    assert client.get("/staff/spot-checks").status_code == 403
    assert client.get(f"/staff/spot-checks/{check.id}").status_code == 403
    denied = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "spot_check.view_denied")).all()
    assert len(denied) == 2 and all(a.staff_id == w.nurse.id for a in denied)
    assert "/staff/spot-checks" not in client.get("/staff").text
