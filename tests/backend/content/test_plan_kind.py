"""Follow-up plans as studio content, on SQLite and PostgreSQL: the editor's form and validation, review by a
colleague with the approver grant, publishing materialising the plan row, tasks keeping the revision that
created them (and running on its settings), a retired questionnaire refused, two editors of one draft,
pause and resume; and the population preview against the tasks the planner writes, on varied data."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.audiences.plans import due_contacts, plan_population
from backend.content import revisions as rv
from backend.content.plan import FIELDS, KIND, diff, plan_from_body, skeleton, validate
from backend.content.plan_form import body_from_form, form_values
from backend.followup.catalog import do_publish
from backend.followup.dispatcher import dispatch_due
from backend.followup.plan_control import do_pause_plan, do_resume_plan, open_tasks_by_revision
from backend.followup.planner import plan_one, run_planner
from backend.models import (
    Anchor,
    AuditEvent,
    ContentItem,
    EncounterKind,
    FollowUpPlan,
    OutreachStatus,
    OutreachTask,
    RevisionState,
    Role,
    StaffUser,
)
from backend.services.refusal import ActionRefused, Reason
from tests import factories
from tests.backend.followup.test_followup import DEFINITION

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def _body(**changes: Any) -> dict[str, Any]:
    return {**skeleton("Cardiology discharges"), "questionnaire_id": "recovery", **changes}


# --- the body and the form (pure) ---------------------------------------------------------------


def test_a_new_plan_skeleton_needs_only_its_questionnaire() -> None:
    assert [(p.where, p.code) for p in validate(skeleton("x"))] == [("questionnaire_id", "required")]
    assert validate(_body()) == []


@pytest.mark.parametrize(
    ("changes", "where", "code"),
    [
        ({"name": " "}, "name", "required"),
        ({"offsets_days": []}, "offsets_days", "required"),
        ({"offsets_days": [3, 3]}, "offsets_days", "repeated"),
        ({"offsets_days": [-1]}, "offsets_days", "out_of_range"),
        ({"offsets_days": ["soon"]}, "offsets_days", "out_of_range"),
        ({"send_hour": 24}, "send_hour", "out_of_range"),
        ({"send_hour": None}, "send_hour", "out_of_range"),
        ({"channels": []}, "channels", "required"),
        ({"channels": ["fax"]}, "channels", "unknown_value"),
        ({"channels": ["sms", "sms"]}, "channels", "repeated"),
        ({"encounter_kinds": ["ward_round"]}, "encounter_kinds", "unknown_value"),
        ({"department_ids": ["cardio"]}, "department_ids", "unknown_value"),
        ({"age_min": 70, "age_max": 60}, "age_max", "below_minimum"),
        ({"age_min": 200}, "age_min", "out_of_range"),
        ({"min_visits": 0}, "min_visits", "out_of_range"),
        ({"sample_ratio": 0}, "sample_ratio", "out_of_range"),
        ({"sample_ratio": 1.5}, "sample_ratio", "out_of_range"),
        ({"anchor": "admission"}, "anchor", "unknown_value"),
        ({"excluded_flags": ["rich"]}, "excluded_flags", "unknown_value"),
        ({"diagnosis_prefixes": ["I" * 17]}, "diagnosis_prefixes", "unknown_value"),
        ({"resend_after_hours": 0}, "resend_after_hours", "out_of_range"),
        ({"attempts_per_channel": 11}, "attempts_per_channel", "out_of_range"),
        ({"colour": "red"}, "colour", "unknown_field"),
        ({"channels": "sms"}, "channels", "not_a_list"),
    ],
)
def test_each_bad_setting_is_named_by_its_field(changes: dict[str, Any], where: str, code: str) -> None:
    assert (where, code) in [(p.where, p.code) for p in validate(_body(**changes))]


def _form(body: dict[str, Any]) -> dict[str, list[str]]:
    """What a browser posts for the editor showing `body`."""
    shown = form_values(body)
    form: dict[str, list[str]] = {}
    for name in ("name", "questionnaire_id", "anchor", "sample_percent", "diagnosis_prefixes"):
        form[name] = [str(shown[name])]
    for name in ("procedure_codes", "offsets_days", "age_min", "age_max", "min_visits", "send_hour"):
        form[name] = [str(shown[name])]
    for name in ("daily_limit", "resend_after_hours", "attempts_per_channel"):
        form[name] = [str(shown[name])]
    for name in ("encounter_kinds", "department_ids", "ward_ids", "excluded_flags"):
        form[name] = [str(v) for v in shown[name]]
    for slot, channel in enumerate(shown["channel_slots"], start=1):
        form[f"channel_{slot}"] = [channel]
    return form


def test_the_form_gives_back_the_body_it_shows() -> None:
    body = _body(
        department_ids=[3, 5],
        diagnosis_prefixes=["I21", "I10"],
        procedure_codes=["36.06"],
        age_min=18,
        min_visits=2,
        offsets_days=[3, 15, 30],
        channels=["wechat", "sms", "voice"],
        sample_ratio=0.25,
        daily_limit=40,
    )
    assert body_from_form(_form(body)) == body
    assert tuple(body_from_form({})) == FIELDS  # the form describes every setting


def test_typed_text_survives_and_is_named() -> None:
    form = _form(_body())
    form["offsets_days"] = ["3，15; soon"]  # a Chinese comma is a separator too
    form["sample_percent"] = ["half"]
    body = body_from_form(form)
    assert body["offsets_days"] == [3, 15, "soon"] and body["sample_ratio"] == "half"
    assert {p.where for p in validate(body)} == {"offsets_days", "sample_ratio"}
    assert form_values(body)["offsets_days"] == "3, 15, soon"  # shown again as typed


def test_the_diff_names_each_changed_setting() -> None:
    changes = diff(_body(), _body(offsets_days=[7], channels=["sms"]))
    assert [(c.where, c.before, c.after) for c in changes] == [
        ("offsets_days", "[3, 30]", "[7]"),
        ("channels", '["wechat", "sms"]', '["sms"]'),
    ]


# --- the lifecycle ------------------------------------------------------------------------------


def _people(db: Session) -> tuple[StaffUser, StaffUser]:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    return author, approver


def _publish(
    db: Session, item: ContentItem, body: dict[str, Any], author: StaffUser, approver: StaffUser
) -> None:
    draft = rv.do_start_draft(db, item, author, body=body)
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, approver, now=NOW)
    db.commit()


def _discharged(db: Session, dept: Any, days_ago: float) -> Any:
    patient = factories.patient(db)
    enc = factories.encounter(db, patient, dept, started=NOW - timedelta(days=days_ago + 3))
    enc.ended_at = NOW - timedelta(days=days_ago)
    return patient


def test_a_plan_is_reviewed_published_and_its_tasks_keep_their_revision(db: Session) -> None:
    do_publish(db, DEFINITION)
    author, approver = _people(db)
    dept = factories.department(db)
    _discharged(db, dept, 2.8)
    item = rv.get_item(db, KIND, "cardio", create=True, clinical=True)
    draft = rv.do_start_draft(db, item, author, body=_body(department_ids=[dept.id], channels=["webchat"]))
    rv.do_submit(db, item, draft.number, author)
    with pytest.raises(ActionRefused) as own:
        rv.do_approve(db, item, draft.number, author)
    assert own.value.reason == Reason.OWN_REVISION
    plain = factories.staff(db, username="plain", role=Role.CONTENT_EDITOR)
    assert rv.may_approve(db, item, draft, plain) == Reason.NOT_AN_APPROVER
    assert db.scalar(sa.select(sa.func.count()).select_from(FollowUpPlan)) == 0  # nothing until published
    rv.do_approve(db, item, draft.number, approver, now=NOW)
    db.commit()

    plan = db.scalars(sa.select(FollowUpPlan).where(FollowUpPlan.content_key == "cardio")).one()
    assert (plan.revision, plan.active, plan.department_ids, plan.offsets_days) == (
        1,
        True,
        [dept.id],
        [3, 30],
    )
    assert run_planner(db, NOW) == 2
    db.commit()
    assert open_tasks_by_revision(db, plan.id) == {1: 2}

    # revision 2 changes the channels: the follow-ups under way keep revision 1's
    _publish(db, item, _body(department_ids=[dept.id], channels=["sms"]), author, approver)
    db.refresh(plan)
    assert (plan.revision, plan.channels) == (2, ["sms"])
    assert dispatch_due(NOW + timedelta(hours=1)) == {"sent:webchat": 1}
    first = db.scalars(sa.select(OutreachTask).order_by(OutreachTask.offset_days)).first()
    assert first is not None and first.plan_revision == 1 and first.last_channel is not None
    assert first.last_channel.value == "webchat"
    later = _discharged(db, dept, 2.8)
    db.commit()
    plan_one(db, plan, NOW)
    db.commit()
    new = db.scalars(sa.select(OutreachTask).where(OutreachTask.patient_id == later.id)).all()
    assert {t.plan_revision for t in new} == {2}
    actions = db.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("plan.%"))).all()
    assert actions.count("plan.materialised") == 2


def test_a_plan_whose_questionnaire_is_retired_or_unknown_is_refused(db: Session) -> None:
    author, approver = _people(db)
    item = rv.get_item(db, KIND, "ghost", create=True, clinical=True)
    draft = rv.do_start_draft(db, item, author, body=_body(questionnaire_id="never_published"))
    rv.do_submit(db, item, draft.number, author)
    db.commit()
    with pytest.raises(rv.ContentInvalid) as refused, session_scope() as app:  # the app's unit of work
        rv.do_approve(
            app, app.get_one(ContentItem, item.id), draft.number, app.get_one(StaffUser, approver.id)
        )
    assert [(p.where, p.code) for p in refused.value.problems] == [
        ("questionnaire_id", "questionnaire_retired")
    ]
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(FollowUpPlan)) == 0
    assert rv.get_revision(db, item, draft.number).state is RevisionState.IN_REVIEW  # nothing published

    # a questionnaire whose studio item has no published revision any more counts as retired
    do_publish(db, DEFINITION)
    withdrawn = ContentItem(kind="questionnaires", key="recovery", clinical=False, published_number=None)
    db.add(withdrawn)
    db.flush()
    second = rv.do_start_draft(db, item, author, body=_body())
    rv.do_submit(db, item, second.number, author)
    with pytest.raises(rv.ContentInvalid):
        rv.do_approve(db, item, second.number, approver, now=NOW)


def test_the_second_of_two_editors_is_told_and_keeps_nothing_over_the_first(db: Session) -> None:
    author, other = _people(db)
    item = rv.get_item(db, KIND, "shared", create=True, clinical=True)
    draft = rv.do_start_draft(db, item, author, body=_body())
    db.commit()
    loaded = draft.version
    rv.do_save_draft(db, item, draft.number, author, version=loaded, body=_body(offsets_days=[7]))
    db.commit()
    with pytest.raises(ActionRefused) as meanwhile:
        rv.do_save_draft(db, item, draft.number, other, version=loaded, body=_body(offsets_days=[14]))
    assert meanwhile.value.reason == Reason.EDITED_MEANWHILE
    db.rollback()
    assert rv.get_revision(db, item, draft.number).body["offsets_days"] == [7]


def test_a_paused_plan_plans_and_sends_nothing_until_resumed(db: Session) -> None:
    do_publish(db, DEFINITION)
    author, approver = _people(db)
    dept = factories.department(db)
    _discharged(db, dept, 2.8)
    item = rv.get_item(db, KIND, "pausable", create=True, clinical=True)
    _publish(
        db, item, _body(department_ids=[dept.id], channels=["webchat"], offsets_days=[3]), author, approver
    )
    plan = db.scalars(sa.select(FollowUpPlan)).one()
    run_planner(db, NOW)
    do_pause_plan(db, plan, author)
    db.commit()
    with pytest.raises(ActionRefused) as again:
        do_pause_plan(db, plan, author)
    assert again.value.reason == Reason.PLAN_ALREADY_PAUSED
    nurse = factories.staff(db, username="nurse", role=Role.NURSE)
    with pytest.raises(ActionRefused):
        do_resume_plan(db, plan, nurse)
    later = _discharged(db, dept, 2.7)
    db.commit()
    assert run_planner(db, NOW) == 0  # no new follow-ups while paused
    assert dispatch_due(NOW + timedelta(hours=1)) == {"waiting:paused": 1}
    db.expire_all()
    task = db.scalars(sa.select(OutreachTask)).one()
    assert task.status is OutreachStatus.SCHEDULED and task.attempts == 0
    do_resume_plan(db, db.get_one(FollowUpPlan, plan.id), author)
    db.commit()
    assert run_planner(db, NOW) == 1  # the patient discharged meanwhile is planned now
    db.commit()
    assert dispatch_due(NOW + timedelta(hours=3)) == {"sent:webchat": 2}
    assert {t.patient_id for t in db.scalars(sa.select(OutreachTask))} >= {later.id}
    actions = db.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.action.in_(["plan.paused", "plan.resumed"]))
    )
    assert list(actions) == ["plan.paused", "plan.resumed"]


# --- the preview against the planner ------------------------------------------------------------

ZONES = ("Asia/Shanghai", "Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", "UTC")


def _varied(db: Session, depts: Sequence[Any], n: int, seed: int) -> None:
    """Patients in five zones (two with summer time), discharges and visits at every hour over 40 days,
    some excluded, some born long ago, some with several visits."""
    rng = random.Random(seed)
    for _ in range(n):
        patient = factories.patient(
            db,
            deceased=rng.random() < 0.05,
            do_not_disturb=rng.random() < 0.05,
            birth_year=rng.choice([1930, 1950, 1970, 1990, 2010]),
        )
        patient.timezone = rng.choice(ZONES)
        if rng.random() < 0.2:
            patient.wechat_openid = f"o-{patient.id}"
        for _ in range(rng.choice([1, 1, 2, 3])):
            ended = NOW - timedelta(days=rng.uniform(-2, 40), minutes=rng.randrange(1440))
            enc = factories.encounter(
                db,
                patient,
                rng.choice(depts),
                kind=rng.choice([EncounterKind.DISCHARGE, EncounterKind.OUTPATIENT]),
            )
            enc.started_at, enc.ended_at = ended - timedelta(hours=rng.choice([2, 50])), ended
            enc.primary_diagnosis = rng.choice(["I10", "I21.4", "K35.8"])
    db.flush()


@pytest.mark.parametrize(
    "settings",
    [
        {"offsets_days": [1, 3, 15, 30], "send_hour": 10},
        {"offsets_days": [0, 7], "send_hour": 20, "anchor": "visit", "sample_ratio": 0.5},
        {
            "offsets_days": [2, 14],
            "send_hour": 8,
            "diagnosis_prefixes": ["I2"],
            "age_min": 50,
            "min_visits": 2,
        },
    ],
)
def test_the_preview_counts_exactly_what_the_planner_creates(db: Session, settings: dict[str, Any]) -> None:
    depts = [factories.department(db) for _ in range(3)]
    _varied(db, depts, 150, seed=len(str(settings)))
    body = _body(
        department_ids=[depts[0].id, depts[1].id],
        encounter_kinds=["discharge", "outpatient"],
        excluded_flags=["deceased", "do_not_disturb"],
        channels=["wechat", "sms"],
        **settings,
    )
    assert validate(body) == []
    plan = plan_from_body(body)
    db.add(plan)
    db.flush()
    preview = due_contacts(db, plan, NOW, 30)
    plan_one(db, plan, NOW)
    db.flush()
    tasks = db.scalars(sa.select(OutreachTask).where(OutreachTask.plan_id == plan.id)).all()
    expected: dict[int, tuple[int, datetime]] = {}
    for task in sorted(tasks, key=lambda t: (t.encounter_id, t.offset_days)):
        due = task.due_at
        if NOW <= due < NOW + timedelta(days=30):
            known = expected.get(task.patient_id)
            if known is None or due < known[1]:
                expected[task.patient_id] = (task.department_id, due)
    assert expected, "the varied data must give the plan someone to contact"
    assert {p: (d.department_id, d.at) for p, d in preview.items()} == expected
    population = plan_population(db, plan, NOW)
    assert population.patients[30] == len(expected)
    assert sum(population.by_channel.values()) == len(expected)
    assert population.patients[7] == sum(1 for _, at in expected.values() if at < NOW + timedelta(days=7))


def test_an_unsaved_plan_is_never_stored_by_its_preview(db: Session) -> None:
    depts = [factories.department(db)]
    _varied(db, depts, 20, seed=3)
    draft = plan_from_body(_body(anchor=Anchor.DISCHARGE.value))
    plan_population(db, draft, NOW)
    db.flush()
    assert db.scalar(sa.select(sa.func.count()).select_from(FollowUpPlan)) == 0
