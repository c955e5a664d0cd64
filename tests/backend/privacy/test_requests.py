"""Correction, anonymisation and erasure requests: a second person decides, legal holds block and say
why, anonymisation keeps de-identified statistics, erasure leaves a tombstone that a restore can replay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import roles
from backend.admin.roles import do_create_role
from backend.app.settings import get_settings
from backend.models import (
    AuditEvent,
    ConsentEvent,
    Encounter,
    ErasureTombstone,
    Finding,
    Message,
    MissedEscalation,
    Patient,
    PatientIdentifier,
    RightsKind,
    RightsRequest,
    RightsState,
    Role,
    StaffRole,
    Task,
    TaskEvent,
    VoiceCall,
)
from backend.models.base import utcnow
from backend.privacy import retention
from backend.privacy.erasure import read_tombstone_file, replay_tombstones
from backend.privacy.holds import Hold
from backend.privacy.requests import HeldRefusal, do_approve, do_reject, do_request, parse_changes
from backend.privacy.retention import remove_recordings_of
from backend.security.permissions import Permission, forget, may
from backend.services.consents import do_grant_consent
from backend.services.inbox import do_add_note
from backend.services.refusal import ActionRefused, Reason
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.backend.privacy.helpers import TYPED, open_complaint, rich_patient
from tests.channels.fake_twilio import FakeTwilio


def _people(db: Session) -> tuple[object, object]:
    nurse = factories.staff(db, username="nurse", role=Role.NURSE)
    officer = factories.staff(db, username="officer", role=Role.ADMIN)
    return nurse, officer


def _actions(db: Session, patient_id: int) -> list[str]:
    return list(
        db.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.patient_id == patient_id).order_by(AuditEvent.id)
        )
    )


def test_a_correction_is_applied_only_by_a_second_person_who_is_a_privacy_officer(db: Session) -> None:
    nurse, officer = _people(db)
    person = factories.patient(db, name="Alise Wang")
    now = utcnow()
    changes = parse_changes({"name": "Alice Wang", "phone": "13900009999", "birth_date": "1961-02-03"})
    request = do_request(
        db,
        patient=person,
        kind=RightsKind.CORRECTION,
        reason="Spelling of her name",
        user=nurse,
        now=now,
        changes=changes,
    )
    assert request.state is RightsState.PENDING
    # the nurse who asked may not decide, nor may any non-admin
    with pytest.raises(ActionRefused) as refused:
        do_approve(db, request=request, user=nurse, now=now)
    assert refused.value.reason == Reason.NOT_A_PRIVACY_OFFICER
    assert person.name == "Alise Wang" and request.state is RightsState.PENDING
    do_approve(db, request=request, user=officer, now=now, note="checked her ID card")
    db.commit()
    db.refresh(person)
    assert person.name == "Alice Wang"
    assert person.phone == "+8613900009999"
    assert person.phone_bidx == Patient.phone_index("13900009999")  # searchable under the new number
    assert str(person.birth_date) == "1961-02-03"
    assert request.state is RightsState.APPLIED and request.decided_by_id == officer.id
    actions = _actions(db, person.id)
    assert actions[-3:] == ["rights.requested", "rights.decide_denied", "rights.applied"]
    # the audit rows name the fields, never their values
    details = json.dumps([e.detail for e in db.scalars(sa.select(AuditEvent))])
    assert "13900009999" not in details and "Alice" not in details


def test_the_requester_cannot_approve_her_own_request_even_as_admin(db: Session) -> None:
    _, officer = _people(db)
    person = factories.patient(db)
    request = do_request(
        db,
        patient=person,
        kind=RightsKind.CORRECTION,
        reason="wrong sex",
        user=officer,
        now=utcnow(),
        changes=parse_changes({"sex": "female"}),
    )
    with pytest.raises(ActionRefused) as refused:
        do_approve(db, request=request, user=officer, now=utcnow())
    assert refused.value.reason == Reason.OWN_REQUEST
    assert request.state is RightsState.PENDING


def test_who_decides_follows_the_privacy_permission_not_the_admin_role(db: Session) -> None:
    """The built-in privacy officer decides; a manager (who reads access reports) does not; a hospital's
    own role given `privacy.decide` does, and taking it away from her role stops her at once."""
    nurse, root = _people(db)
    dpo = factories.staff(db, username="dpo", role=Role.PRIVACY_OFFICER)
    boss = factories.staff(db, username="boss", role=Role.MANAGER)
    assert may(dpo, Permission.PRIVACY_DECIDE) and may(dpo, Permission.PRIVACY_REPORT)
    assert not may(boss, Permission.PRIVACY_DECIDE) and may(boss, Permission.PRIVACY_REPORT)
    assert not may(dpo, Permission.ADMIN_STAFF)  # nothing of the console beyond the audit log
    person = factories.patient(db, name="Tran Van Minh")

    def ask(reason: str) -> RightsRequest:
        return do_request(
            db,
            patient=person,
            kind=RightsKind.CORRECTION,
            reason=reason,
            user=nurse,
            now=utcnow(),
            changes=parse_changes({"sex": "male"}),
        )

    with pytest.raises(ActionRefused) as refused:
        do_approve(db, request=(first := ask("sex typed wrong")), user=boss, now=utcnow())
    assert refused.value.reason == Reason.NOT_A_PRIVACY_OFFICER and first.state is RightsState.PENDING
    do_approve(db, request=first, user=dpo, now=utcnow())
    assert first.state is RightsState.APPLIED

    form = roles.RoleForm("dpo_local", "Data protection", frozenset({Permission.PRIVACY_DECIDE}))
    do_create_role(db, form=form, by=root.id)
    clerk = factories.staff(db, username="clerk", role="dpo_local")
    do_approve(db, request=(second := ask("checked again")), user=clerk, now=utcnow())
    assert second.state is RightsState.APPLIED
    role = db.get(StaffRole, "dpo_local")
    assert role is not None
    roles.do_update_role(
        db,
        key="dpo_local",
        version=role.version,
        form=roles.RoleForm("dpo_local", "Data protection", frozenset()),
        by=root.id,
    )
    forget(db)
    with pytest.raises(ActionRefused):
        do_approve(db, request=(third := ask("once more")), user=clerk, now=utcnow())
    assert third.state is RightsState.PENDING


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({}, Reason.CORRECTION_EMPTY),
        ({"birth_date": "17/05/1960"}, Reason.CORRECTION_INVALID),
        ({"birth_date": "2999-01-01"}, Reason.CORRECTION_INVALID),
        ({"sex": "x"}, Reason.CORRECTION_INVALID),
        ({"phone": "12"}, Reason.CORRECTION_INVALID),
        ({"language": "fr"}, Reason.CORRECTION_INVALID),
    ],
)
def test_a_wrong_correction_is_refused_with_its_reason(values: dict[str, str], reason: Reason) -> None:
    with pytest.raises(ActionRefused) as refused:
        parse_changes(values)
    assert refused.value.reason == reason


def test_a_rejection_needs_a_reason_and_drops_the_proposed_values(db: Session) -> None:
    nurse, officer = _people(db)
    person = factories.patient(db, name="Bo Li")
    request = do_request(
        db,
        patient=person,
        kind=RightsKind.CORRECTION,
        reason="she says",
        user=nurse,
        now=utcnow(),
        changes=parse_changes({"name": "Bo Lee"}),
    )
    with pytest.raises(ActionRefused):
        do_reject(db, request=request, user=officer, now=utcnow(), note="  ")
    assert request.state is RightsState.PENDING
    do_reject(db, request=request, user=officer, now=utcnow(), note="The HIS record is right")
    assert request.state is RightsState.REJECTED and request.changes is None
    assert person.name == "Bo Li"
    assert _actions(db, person.id)[-1] == "rights.rejected"


def test_anonymisation_removes_identity_and_free_text_and_keeps_statistics(db: Session) -> None:
    nurse, officer = _people(db)
    rich = rich_patient(db)
    person, settings = rich.patient, get_settings()
    do_add_note(db, task=rich.task, staff_id=nurse.id, text="Her neighbour Li Lei says she fell")
    db.add(MissedEscalation(message_id=rich.message.id, marked_by=nurse.id, note="Li Lei called too"))
    born_year = person.birth_date.year if person.birth_date else 0
    request = do_request(
        db,
        patient=person,
        kind=RightsKind.ANONYMISATION,
        reason="withdrew from the programme",
        user=nurse,
        now=utcnow(),
    )
    assert request.state is RightsState.PENDING and request.holds == []  # a recent visit does not hold it
    do_approve(db, request=request, user=officer, now=utcnow())
    db.commit()
    db.expire_all()
    person = db.get(Patient, person.id)
    assert person is not None
    assert person.name == "—" and person.phone is None and person.id_number is None
    assert person.mrn == f"ERASED-{person.id}"
    assert person.birth_date is not None and (person.birth_date.year, person.birth_date.month) == (
        born_year,
        1,
    )
    assert db.scalar(sa.select(sa.func.count()).select_from(PatientIdentifier)) == 0
    message = db.get(Message, rich.message.id)
    assert message is not None and message.text == "" and not message.media
    assert not (settings.media_dir / rich.media_file).exists()
    assert not (settings.media_dir / rich.audio_file).exists()
    db.refresh(rich.response)
    assert rich.response.answers == {"pain": 8}  # the coded answer stays, the typed one is gone
    assert rich.response.scores == {"total": 8}
    assert db.get(Finding, rich.finding.id) is not None
    db.refresh(rich.call)
    assert rich.call.transcripts == [{"item": "other", "confidence": 0.9, "via": "speech"}]
    # the recording lives at the gateway: its link stays until the gateway has deleted it (below)
    assert rich.call.recording_url is not None
    encounter = db.scalars(sa.select(Encounter).where(Encounter.patient_id == person.id)).one()
    assert encounter.diagnoses and encounter.department_id == rich.dept.id  # visits still count
    assert db.get(Task, rich.task.id).title == "—"  # type: ignore[union-attr]
    stone = db.scalars(sa.select(ErasureTombstone)).one()
    assert stone.patient_id == person.id and stone.kind is RightsKind.ANONYMISATION
    assert [s["patient_id"] for s in read_tombstone_file(settings.tombstone_file)] == [person.id]
    # nothing typed survives anywhere in the patient's rows
    dump = json.dumps(
        [
            rich.response.answers,
            rich.call.transcripts,
            [e.detail for e in db.scalars(sa.select(AuditEvent))],
            [e.detail for e in db.scalars(sa.select(TaskEvent))],
            list(db.scalars(sa.select(MissedEscalation.note))),
        ]
    )
    assert "Li Lei" not in dump


def test_a_recent_visit_blocks_erasure_and_the_request_says_so(db: Session) -> None:
    nurse, officer = _people(db)
    rich = rich_patient(db)
    request = do_request(
        db, patient=rich.patient, kind=RightsKind.ERASURE, reason="forget me", user=nurse, now=utcnow()
    )
    assert request.state is RightsState.BLOCKED
    assert request.holds == [Hold.MEDICAL_RECORD_RETENTION.value]
    with pytest.raises(ActionRefused) as refused:
        do_approve(db, request=request, user=officer, now=utcnow())
    assert refused.value.reason == Reason.NOT_PENDING
    db.refresh(rich.message)
    assert rich.message.text == TYPED  # nothing was changed


def test_an_open_complaint_and_research_consent_hold_anonymisation(db: Session) -> None:
    nurse, officer = _people(db)
    rich = rich_patient(db)
    request = do_request(
        db,
        patient=rich.patient,
        kind=RightsKind.ANONYMISATION,
        reason="asked by letter",
        user=nurse,
        now=utcnow(),
    )
    assert request.state is RightsState.PENDING
    # a complaint and a research consent arrive before the officer decides
    open_complaint(db, rich.patient)
    do_grant_consent(
        db, patient_id=rich.patient.id, purpose=ConsentPurpose.RESEARCH, channel=Channel.SMS, source="staff"
    )
    with pytest.raises(HeldRefusal) as held:
        do_approve(db, request=request, user=officer, now=utcnow())
    assert held.value.holds == [Hold.OPEN_COMPLAINT, Hold.RESEARCH_CONSENT]
    assert request.state is RightsState.PENDING
    assert rich.patient.name == "Alice Wang"
    assert _actions(db, rich.patient.id)[-1] == "rights.approve_held"


def test_erasure_after_the_retention_period_removes_structured_values_too(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    nurse, officer = _people(db)
    rich = rich_patient(db, visit_days_ago=31 * 366)
    request = do_request(
        db, patient=rich.patient, kind=RightsKind.ERASURE, reason="forget me", user=nurse, now=utcnow()
    )
    assert request.state is RightsState.PENDING, request.holds
    do_approve(db, request=request, user=officer, now=utcnow())
    db.commit()
    db.expire_all()
    assert db.get(Patient, rich.patient.id).birth_date is None  # type: ignore[union-attr]
    response = db.get(type(rich.response), rich.response.id)
    assert response is not None and response.answers == {} and response.scores == {}
    assert db.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 0
    assert db.scalars(sa.select(Encounter.diagnoses)).one() == []
    assert db.scalars(sa.select(ErasureTombstone.kind)).one() is RightsKind.ERASURE
    # asking again is refused: there is nothing left to erase
    with pytest.raises(ActionRefused) as refused:
        do_request(
            db,
            patient=db.get(Patient, rich.patient.id),
            kind=RightsKind.ERASURE,
            reason="again",  # type: ignore[arg-type]
            user=nurse,
            now=utcnow(),
        )
    assert refused.value.reason == Reason.ALREADY_ERASED


def test_replaying_tombstones_after_a_restore_wipes_again_and_restores_the_rows(db: Session) -> None:
    nurse, officer = _people(db)
    rich = rich_patient(db)
    other = factories.patient(db, name="Chen Jie")
    mrn = rich.patient.mrn
    request = do_request(
        db, patient=rich.patient, kind=RightsKind.ANONYMISATION, reason="asked", user=nurse, now=utcnow()
    )
    do_approve(db, request=request, user=officer, now=utcnow())
    db.commit()
    path = get_settings().tombstone_file
    # a line for a patient whose row now holds someone else (ids reused after the restore)
    with path.open("a") as out:
        out.write(
            json.dumps(
                {
                    "patient_id": other.id,
                    "mrn_bidx": "not-hers",
                    "kind": "erasure",
                    "at": utcnow().isoformat(),
                }
            )
            + "\n"
        )
    # the restore: the backup predates the anonymisation (her values back, no tombstone row)
    db.execute(sa.delete(ErasureTombstone))
    person = db.get(Patient, rich.patient.id)
    assert person is not None
    person.name, person.mrn, person.phone = "Alice Wang", mrn, "+8613900001111"
    db.execute(sa.update(Message).where(Message.id == rich.message.id).values(text=TYPED))
    db.commit()
    counts = replay_tombstones(db, path)
    db.commit()
    assert counts == {"wiped": 1, "rows_restored": 1, "different_patient": 1}
    db.expire_all()
    assert db.get(Patient, rich.patient.id).name == "—"  # type: ignore[union-attr]
    assert db.get(Message, rich.message.id).text == ""  # type: ignore[union-attr]
    assert db.get(Patient, other.id).name == "Chen Jie"  # type: ignore[union-attr]
    # a second replay changes nothing more
    assert replay_tombstones(db, path).get("wiped", 0) == 0


def test_a_malformed_tombstone_file_is_refused_before_anything_is_applied(db: Session) -> None:
    path = get_settings().tombstone_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '{"patient_id": 1, "mrn_bidx": "x", "kind": "erasure", "at": "2026-01-01T00:00:00+00:00"}\nnot json\n'
    )
    person = factories.patient(db, name="Dan Wu")
    db.commit()
    with pytest.raises(ValueError, match="line 2"):
        replay_tombstones(db, path)
    db.refresh(person)
    assert person.name == "Dan Wu"
    path.unlink()


def test_a_second_pending_request_of_the_same_kind_is_refused(db: Session) -> None:
    nurse, _ = _people(db)
    person = factories.patient(db)
    do_request(db, patient=person, kind=RightsKind.ANONYMISATION, reason="one", user=nurse, now=utcnow())
    with pytest.raises(ActionRefused) as refused:
        do_request(db, patient=person, kind=RightsKind.ANONYMISATION, reason="two", user=nurse, now=utcnow())
    assert refused.value.reason == Reason.ALREADY_REQUESTED
    with pytest.raises(ActionRefused) as refused:
        do_request(db, patient=person, kind=RightsKind.ERASURE, reason=" ", user=nurse, now=utcnow())
    assert refused.value.reason == Reason.REASON_REQUIRED


def test_retention_years_zero_lifts_the_retention_hold(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("CARELOOP_MEDICAL_RECORD_RETENTION_YEARS", "0")
    reset_caches()
    nurse, _ = _people(db)
    rich = rich_patient(db)
    request = do_request(
        db,
        patient=rich.patient,
        kind=RightsKind.ERASURE,
        reason="forget me",
        user=nurse,
        now=utcnow() + timedelta(seconds=1),
    )
    assert request.state is RightsState.PENDING


def test_an_anonymised_patients_recording_is_deleted_at_the_gateway_now_or_by_the_next_run(
    db: Session, twilio: FakeTwilio
) -> None:
    nurse, officer = _people(db)
    rich = rich_patient(db, gateway=twilio)
    request = do_request(
        db, patient=rich.patient, kind=RightsKind.ANONYMISATION, reason="asked", user=nurse, now=utcnow()
    )
    do_approve(db, request=request, user=officer, now=utcnow())
    db.commit()
    twilio.fail_next(500, 20500)  # the gateway is down when the approval tries
    assert remove_recordings_of(rich.patient.id) == 0
    db.expire_all()
    assert db.get_one(VoiceCall, rich.call.id).recording_url is not None  # kept, to try again
    assert "RE1" in twilio.recordings
    # the hourly job follows the tombstones whatever the recording's age
    assert retention.enforce(now=utcnow())["call_recordings"] == 1
    db.expire_all()
    assert db.get_one(VoiceCall, rich.call.id).recording_url is None
    assert "RE1" not in twilio.recordings
    deletes = [r for r in twilio.requests if r.path.endswith("/Recordings/RE1.json")]
    assert [r.answered for r in deletes][-1] == 204
