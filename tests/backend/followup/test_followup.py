"""Follow-up plans end to end on both databases: planner, dispatcher, responses, findings, exclusions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import definition_of, do_publish
from backend.followup.dispatcher import dispatch_due
from backend.followup.exclusions import do_change_encounter_times, do_set_exclusion
from backend.followup.planner import due_time, run_planner, sampled
from backend.followup.responses import (
    AlreadyCompleted,
    IncompleteResponse,
    do_complete_response,
    do_save_answers,
)
from backend.messaging.links import LinkKind, read_token, render_links
from backend.models import (
    Anchor,
    Department,
    Encounter,
    EncounterKind,
    Finding,
    FollowUpPlan,
    Message,
    MessageStatus,
    OutboxItem,
    OutreachStatus,
    OutreachTask,
    Patient,
    QuestionnaireResponse,
    QuestionnaireVersion,
    Task,
    TaskKind,
    TaskPriority,
)
from backend.services.consents import do_revoke_consent
from bots.domain import Channel, ConsentPurpose
from questionnaires.channels import PublishRefused
from questionnaires.model import Questionnaire
from tests import factories


def texts(en: str) -> dict[str, str]:
    return {"en": en, "zh-CN": f"{en}（中）", "vi": f"{en} (vi)"}


DEFINITION: dict[str, Any] = {
    "id": "recovery",
    "version": 1,
    "kind": "follow_up",
    "title": texts("Recovery check"),
    "items": [
        {"id": "pain", "type": "scale", "min": 0, "max": 10, "required": True, "text": texts("Pain today?")},
        {
            "id": "fever",
            "type": "single_choice",
            "required": True,
            "text": texts("Any fever?"),
            "options": [{"code": "yes", "text": texts("Yes")}, {"code": "no", "text": texts("No")}],
        },
        {
            "id": "temperature",
            "type": "decimal",
            "min": 35,
            "max": 42,
            "text": texts("Temperature?"),
            "enable_when": [{"item": "fever", "op": "=", "value": "yes"}],
        },
    ],
    "rules": [
        {
            "id": "pain_high",
            "when": {"item": "pain", "op": ">=", "value": 7},
            "severity": "high",
            "text": texts("Pain 7 or more"),
        },
        {
            "id": "very_hot",
            "when": {"item": "temperature", "op": ">=", "value": 39},
            "severity": "urgent",
            "text": texts("Temperature 39 or more"),
        },
    ],
}
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def _setup(
    db: Session,
    *,
    channels: list[str] | None = None,
    offsets: list[int] | None = None,
    discharged_days_ago: float = 3.2,
    **plan_kwargs: Any,
) -> tuple[Patient, Encounter, FollowUpPlan]:
    do_publish(db, DEFINITION)
    dept = factories.department(db)
    patient = factories.patient(db)
    encounter = factories.encounter(db, patient, dept, started=NOW - timedelta(days=discharged_days_ago + 4))
    encounter.ended_at = NOW - timedelta(days=discharged_days_ago)
    encounter.primary_diagnosis = "I10"
    plan = FollowUpPlan(
        name="test",
        questionnaire_id="recovery",
        encounter_kinds=["discharge"],
        department_ids=[dept.id],
        offsets_days=offsets or [3],
        channels=channels or ["webchat"],
        send_hour=10,
        **plan_kwargs,
    )
    db.add(plan)
    db.commit()
    return patient, encounter, plan


def _tasks(db: Session) -> list[OutreachTask]:
    db.expire_all()
    return list(db.scalars(sa.select(OutreachTask).order_by(OutreachTask.id)))


def test_due_time_is_the_local_send_hour_on_the_offset_day() -> None:
    discharge = datetime(2026, 11, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 Nov in Shanghai
    assert due_time(discharge, 3, 10, "Asia/Shanghai") == datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
    assert due_time(discharge, 3, 10, "Europe/London") == datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def test_sampling_is_stable_and_close_to_the_ratio() -> None:
    picks = [sampled(1, encounter_id, 0.3) for encounter_id in range(10000)]
    assert picks == [sampled(1, encounter_id, 0.3) for encounter_id in range(10000)]
    assert 0.27 < sum(picks) / len(picks) < 0.33
    assert all(sampled(1, e, 1.0) for e in range(100))


def test_planner_writes_one_task_per_offset_and_is_idempotent(db: Session) -> None:
    patient, encounter, _ = _setup(db, offsets=[3, 15, 30])
    assert run_planner(db, NOW) == 3
    assert run_planner(db, NOW) == 0
    db.commit()
    tasks = _tasks(db)
    assert [(t.offset_days, t.status) for t in tasks] == [
        (3, OutreachStatus.SCHEDULED),
        (15, OutreachStatus.SCHEDULED),
        (30, OutreachStatus.SCHEDULED),
    ]
    assert tasks[0].due_at == due_time(encounter.ended_at or NOW, 3, 10, patient.timezone)


def test_plan_that_matches_no_one_creates_nothing(db: Session) -> None:
    _, _, plan = _setup(db)
    plan.diagnosis_prefixes = ["E11"]  # diabetes; the patient has hypertension
    db.commit()
    assert run_planner(db, NOW) == 0


@pytest.mark.parametrize(
    "flag", ["deceased", "dispute", "do_not_disturb", "invalid_contact", "frequent_visitor"]
)
def test_patients_on_exclusion_lists_are_not_planned(db: Session, flag: str) -> None:
    patient, _, _ = _setup(db)
    setattr(patient, flag, True)
    db.commit()
    assert run_planner(db, NOW) == 0


def test_adding_to_an_exclusion_list_closes_open_follow_ups(db: Session) -> None:
    patient, _, _ = _setup(db, offsets=[3, 15])
    run_planner(db, NOW)
    assert do_set_exclusion(db, patient, "dispute", True, staff_id=None) == 2
    db.commit()
    assert {(t.status, t.closed_reason) for t in _tasks(db)} == {(OutreachStatus.CANCELLED, "dispute")}
    with pytest.raises(ValueError, match="unknown exclusion list"):
        do_set_exclusion(db, patient, "vip", True, staff_id=None)


def test_dispatcher_sends_a_form_link_and_records_the_attempt(db: Session) -> None:
    _setup(db)
    run_planner(db, NOW)
    db.commit()
    assert dispatch_due(NOW) == {"sent:webchat": 1}
    task = _tasks(db)[0]
    assert (task.status, task.attempts, task.last_channel) == (OutreachStatus.SENT, 1, Channel.WEBCHAT)
    message = db.scalars(sa.select(Message)).one()
    assert message.status is MessageStatus.SENT and "Recovery check" in message.text
    link = next(p for p in message.parts or [] if p["type"] == "link")
    response = db.scalars(sa.select(QuestionnaireResponse)).one()
    # the stored message holds a reference to the link, not the link (a bearer credential) itself
    assert link["url"].startswith(f"careloop-link:q.{response.id}.")
    assert "/q/" not in str(db.execute(sa.text("SELECT parts FROM messages")).scalar_one())
    minted = render_links(get_settings(), link["url"], Channel.WEBCHAT)
    assert read_token(get_settings(), LinkKind.FORM, minted.rpartition("/q/")[2], 3600) == response.id
    assert response.outreach_task_id == task.id
    assert dispatch_due(NOW) == {}  # nothing more is due until the resend time


def test_nothing_is_sent_before_the_due_time(db: Session) -> None:
    _setup(db, discharged_days_ago=1)
    run_planner(db, NOW)
    db.commit()
    assert dispatch_due(NOW) == {}
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_no_answer_resends_then_falls_back_then_records_loss(db: Session) -> None:
    patient, _, _ = _setup(db, channels=["webchat", "sms"], resend_after_hours=24, attempts_per_channel=2)
    run_planner(db, NOW)
    db.commit()
    outcomes = []
    for day in range(6):
        outcomes.append(dict(dispatch_due(NOW + timedelta(days=day, minutes=1))))
    assert outcomes == [
        {"sent:webchat": 1},
        {"sent:webchat": 1},
        {"sent:sms": 1},
        {"sent:sms": 1},
        {"lost:no_answer": 1},
        {},
    ]
    task = _tasks(db)[0]
    assert task.status is OutreachStatus.LOST
    lost = db.scalars(sa.select(Task).where(Task.kind == TaskKind.LOSS_TO_FOLLOW_UP)).one()
    assert lost.patient_id == patient.id and lost.source_id == task.id
    sms = db.scalars(sa.select(Message).where(Message.channel == Channel.SMS)).all()
    # Both SMS attempts went to the outbox for this patient. Whether the inline sender has tried them
    # yet depends on the wall clock (quiet hours in Shanghai), so their send status is not asserted
    # here; the outbox tests cover sending.
    items = db.scalars(sa.select(OutboxItem).where(OutboxItem.message_id.in_([m.id for m in sms]))).all()
    assert len(sms) == 2 and len(items) == 2 and {i.patient_id for i in items} == {patient.id}


def test_consent_withdrawn_on_a_channel_falls_back_to_the_next(db: Session) -> None:
    patient, _, _ = _setup(db, channels=["webchat", "sms"])
    do_revoke_consent(
        db, patient_id=patient.id, purpose=ConsentPurpose.CARE, channel=Channel.WEBCHAT, source="t"
    )
    run_planner(db, NOW)
    db.commit()
    assert dispatch_due(NOW) == {"sent:sms": 1}
    assert (
        db.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.channel == Channel.WEBCHAT))
        == 0
    )


def test_consent_withdrawn_everywhere_means_lost_without_sending(db: Session) -> None:
    patient, _, _ = _setup(db, channels=["webchat"])
    do_revoke_consent(
        db, patient_id=patient.id, purpose=ConsentPurpose.CARE, channel=Channel.WEBCHAT, source="t"
    )
    run_planner(db, NOW)
    db.commit()
    assert dispatch_due(NOW) == {"lost:unreachable": 1}
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_excluded_after_planning_is_cancelled_at_send_time(db: Session) -> None:
    _setup(db)
    run_planner(db, NOW)
    db.execute(sa.update(Patient).values(deceased=True))  # the HIS feed marks the death directly
    db.commit()
    assert dispatch_due(NOW) == {"cancelled:deceased": 1}
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_readmitted_patient_is_not_surveyed(db: Session) -> None:
    patient, encounter, _ = _setup(db)
    run_planner(db, NOW)
    db.add(
        Encounter(
            patient_id=patient.id,
            kind=EncounterKind.INPATIENT,
            department_id=encounter.department_id,
            started_at=NOW - timedelta(days=1),
        )
    )
    db.commit()
    assert dispatch_due(NOW) == {"cancelled:readmitted": 1}


def test_quiet_hours_defer_rather_than_drop(db: Session) -> None:
    _setup(db)
    run_planner(db, NOW)
    db.commit()
    late = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    assert dispatch_due(late) == {"quiet_hours": 1}
    task = _tasks(db)[0]
    assert task.status is OutreachStatus.SCHEDULED
    assert task.next_attempt_at == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert dispatch_due(task.next_attempt_at) == {"sent:webchat": 1}


def test_two_open_surveys_go_one_after_the_other(db: Session) -> None:
    _setup(db, offsets=[3])
    db.add(
        FollowUpPlan(
            name="second",
            questionnaire_id="recovery",
            encounter_kinds=["discharge"],
            offsets_days=[3],
            channels=["webchat"],
            send_hour=10,
        )
    )
    db.commit()
    assert run_planner(db, NOW) == 2
    db.commit()
    assert dispatch_due(NOW) == {"sent:webchat": 1, "waiting": 1}
    _, second = _tasks(db)
    response = db.scalars(sa.select(QuestionnaireResponse)).one()
    _answer(db, response, {"pain": 2, "fever": "no"})
    assert dispatch_due(second.next_attempt_at) == {"sent:webchat": 1}
    assert _tasks(db)[0].status is OutreachStatus.COMPLETED


def _sent_response(db: Session) -> QuestionnaireResponse:
    """A planned, dispatched follow-up: its response waits for the patient's answers."""
    _setup(db)
    run_planner(db, NOW)
    db.commit()
    dispatch_due(NOW)
    return db.scalars(sa.select(QuestionnaireResponse)).one()


def _definition(db: Session, response: QuestionnaireResponse) -> Questionnaire:
    version = db.get(QuestionnaireVersion, response.version_id)
    assert version is not None
    return definition_of(version)


def _answer(db: Session, response: QuestionnaireResponse, answers: dict[str, Any]) -> list[Finding]:
    do_save_answers(db, response, _definition(db, response), answers)
    findings = do_complete_response(db, response)
    db.commit()
    return findings


def test_completed_response_closes_the_task_and_cancels_resends(db: Session) -> None:
    response = _sent_response(db)
    assert _answer(db, response, {"pain": 1, "fever": "no"}) == []
    assert _tasks(db)[0].status is OutreachStatus.COMPLETED
    assert dispatch_due(NOW + timedelta(days=5)) == {}
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 1


def test_a_response_with_findings_becomes_one_task_at_its_most_severe_priority(db: Session) -> None:
    _, encounter, _ = _setup(db)
    run_planner(db, NOW)
    db.commit()
    dispatch_due(NOW)
    response = db.scalars(sa.select(QuestionnaireResponse)).one()
    findings = _answer(db, response, {"pain": 8, "fever": "yes", "temperature": Decimal("39.4")})
    assert sorted(f.code for f in findings) == ["pain_high", "very_hot"]
    [task] = db.scalars(sa.select(Task).where(Task.kind == TaskKind.ABNORMAL_ANSWER))
    # one row in the inbox for the form, named by and timed as its most severe finding
    assert task.title == "recovery:very_hot" and task.priority is TaskPriority.URGENT
    assert task.due_at - task.created_at == timedelta(hours=1)
    assert task.department_id == encounter.department_id and (task.source_type, task.source_id) == (
        "response",
        response.id,
    )
    # every finding points at it, so the task page lists them all
    assert {f.task_id for f in findings} == {task.id}


def test_a_completed_response_cannot_be_submitted_again(db: Session) -> None:
    response = _sent_response(db)
    _answer(db, response, {"pain": 8, "fever": "no"})
    with pytest.raises(AlreadyCompleted):
        do_complete_response(db, response)
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(Task)) == 1


def test_missing_required_answers_refuse_completion(db: Session) -> None:
    response = _sent_response(db)
    do_save_answers(db, response, _definition(db, response), {"pain": 3})
    with pytest.raises(IncompleteResponse) as error:
        do_complete_response(db, response)
    assert error.value.missing == ["fever"]


def test_changed_answer_drops_answers_it_disabled(db: Session) -> None:
    response = _sent_response(db)
    q = _definition(db, response)
    do_save_answers(db, response, q, {"fever": "yes", "temperature": Decimal("38.5")})
    do_save_answers(db, response, q, {"fever": "no"})
    assert response.answers == {"fever": "no"}


def test_changed_discharge_date_moves_unsent_due_times(db: Session) -> None:
    patient, encounter, _ = _setup(db, offsets=[3, 15])
    run_planner(db, NOW)
    db.commit()
    dispatch_due(NOW)  # the day-3 task is sent; the day-15 one is not
    new_end = (encounter.ended_at or NOW) + timedelta(days=2)
    assert do_change_encounter_times(db, encounter, ended_at=new_end) == 1
    db.commit()
    sent, later = _tasks(db)
    assert later.due_at == due_time(new_end, 15, 10, patient.timezone)
    assert sent.status is OutreachStatus.SENT


def test_publishing_the_same_definition_twice_keeps_one_version(db: Session) -> None:
    first = do_publish(db, DEFINITION)
    assert do_publish(db, DEFINITION).id == first.id
    changed = {**DEFINITION, "title": texts("Recovery check, revised")}
    with pytest.raises(ValueError, match="without a new version number"):
        do_publish(db, changed)
    assert do_publish(db, {**changed, "version": 2}).version == 2


def test_a_questionnaire_a_channel_cannot_carry_is_not_published(db: Session) -> None:
    # A decimal with no range cannot be asked by voice (no grammar to listen with): refuse, store nothing.
    unbounded = {k: v for k, v in DEFINITION["items"][2].items() if k not in ("min", "max", "enable_when")}
    definition = {**DEFINITION, "id": "unbounded", "items": [DEFINITION["items"][0], unbounded]}
    with pytest.raises(PublishRefused, match="voice: temperature: a spoken number needs min and max"):
        do_publish(db, definition)
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) == 0


def test_anchor_on_visit_uses_the_visit_start(db: Session) -> None:
    do_publish(db, DEFINITION)
    dept = db.scalars(sa.select(Department)).first() or factories.department(db)
    patient = factories.patient(db)
    factories.encounter(db, patient, dept, kind=EncounterKind.OUTPATIENT, started=NOW - timedelta(days=2))
    db.add(
        FollowUpPlan(
            name="visit",
            questionnaire_id="recovery",
            encounter_kinds=["outpatient"],
            anchor=Anchor.VISIT,
            offsets_days=[1],
            channels=["webchat"],
        )
    )
    db.commit()
    assert run_planner(db, NOW) == 1
