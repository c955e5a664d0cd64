"""A plan's repeating schedule (`from-to/every` in the offsets field): read from the form, checked, and
planned as the days it stands for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.plan import MAX_CONTACTS, MAX_OFFSET, plan_from_body, skeleton, validate
from backend.content.plan_form import body_from_form, form_values, offsets
from backend.followup.planner import GRACE, due_time, plan_one
from backend.models import OutreachTask
from tests import factories
from tests.backend.content.test_plan_kind import _form as _form_of

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _body(**changes: Any) -> dict[str, Any]:
    return {**skeleton("Heart failure, monthly"), "questionnaire_id": "recovery", **changes}


@pytest.mark.parametrize(
    ("typed", "days"),
    [
        ("30-360/30", list(range(30, 361, 30))),
        ("7, 30-120/30", [7, 30, 60, 90, 120]),
        ("30-100/30", [30, 60, 90]),  # the end is kept only when a step reaches it
        ("0-0/1", [0]),
        ("3，10-20/5；40", [3, 10, 15, 20, 40]),  # Chinese separators as anywhere in the form
        ("", []),
        (f"0-{MAX_OFFSET}/{MAX_OFFSET}", [0, MAX_OFFSET]),
    ],
)
def test_a_repeat_stands_for_its_days(typed: str, days: list[int]) -> None:
    assert offsets(typed) == days


@pytest.mark.parametrize(
    "typed",
    ["30-10/5", "0-30/0", f"30-{MAX_OFFSET + 1}/30", "30-60/", "-30-60/5", "30/360", "30-60/x"],
)
def test_a_repeat_that_cannot_be_read_stays_as_typed_and_is_named(typed: str) -> None:
    assert offsets(f"3, {typed}") == [3, typed]
    body = body_from_form(_form(f"3, {typed}"))
    assert [(p.where, p.code) for p in validate(body)] == [("offsets_days", "out_of_range")]
    assert form_values(body)["offsets_days"] == f"3, {typed}"  # shown again as typed


def _form(typed_offsets: str) -> dict[str, list[str]]:
    """What a browser posts for the editor showing a valid plan, with `typed_offsets` in the days field."""
    form = _form_of(_body())
    form["offsets_days"] = [typed_offsets]
    return form


def test_a_monthly_year_is_a_valid_plan() -> None:
    body = body_from_form(_form("7, 30-360/30"))
    assert body["offsets_days"] == [7, *range(30, 361, 30)]
    assert validate(body) == []
    assert plan_from_body(body).offsets_days == [7, *range(30, 361, 30)]


def test_too_many_days_and_overlapping_repeats_are_refused() -> None:
    too_many = _body(offsets_days=offsets(f"1-{MAX_CONTACTS + 1}/1"))
    assert [(p.where, p.code, p.detail) for p in validate(too_many)] == [
        ("offsets_days", "too_many", str(MAX_CONTACTS))
    ]
    assert validate(_body(offsets_days=offsets(f"1-{MAX_CONTACTS}/1"))) == []
    overlapping = _body(offsets_days=offsets("30-90/30, 60"))
    assert [(p.where, p.code) for p in validate(overlapping)] == [("offsets_days", "repeated")]


def test_the_planner_plans_every_day_of_a_repeat_still_ahead(db: Session) -> None:
    dept = factories.department(db)
    patient = factories.patient(db)
    enc = factories.encounter(db, patient, dept)
    enc.ended_at = NOW - timedelta(days=65)
    enc.started_at = enc.ended_at - timedelta(days=3)
    plan = plan_from_body(_body(offsets_days=offsets("30-360/30"), channels=["sms"]))
    db.add(plan)
    db.flush()

    created = plan_one(db, plan, NOW)

    tasks = db.scalars(sa.select(OutreachTask).where(OutreachTask.plan_id == plan.id)).all()
    ahead = [d for d in range(30, 361, 30) if due_time(enc.ended_at, d, 10, patient.timezone) >= NOW - GRACE]
    assert ahead == list(range(90, 361, 30))  # day 30 and 60 had passed when the plan began
    assert created == len(ahead)
    assert sorted((t.offset_days, t.due_at) for t in tasks) == [
        (d, due_time(enc.ended_at, d, 10, patient.timezone)) for d in ahead
    ]
