"""The campaign dialer on both databases, against the local fake of Twilio's Calls API: a plan's voice
step becomes a call; consent, exclusions, quiet hours, the line limit and the rate hold at dialling;
calls that reach nobody are redialled, then the plan falls back or records loss."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.followup.dispatcher import dispatch_due
from backend.followup.planner import run_planner
from backend.models import (
    AuditEvent,
    FollowUpPlan,
    Message,
    OutreachStatus,
    OutreachTask,
    Patient,
    Task,
    TaskKind,
    VoiceCall,
)
from backend.services.consents import do_revoke_consent
from backend.voice.calls import do_end_call, do_record_call_status
from backend.voice.dial_due import dial_due_calls
from bots.domain import Channel, ConsentPurpose
from tests import factories
from tests.channels.fake_twilio_voice import FakeTwilioVoice
from tests.conftest import reset_caches
from voice_ai.call_events import CallState, Outcome
from voice_ai.gateway_twilio import TwilioVoice

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
LATE = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai, 14:30 in London


@pytest.fixture
def fake(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilioVoice]:
    with FakeTwilioVoice() as server:
        for name, value in {
            "CARELOOP_PUBLIC_URL": "https://careloop.example.org",
            "CARELOOP_TWILIO_ACCOUNT_SID": server.account_sid,
            "CARELOOP_TWILIO_AUTH_TOKEN": server.auth_token,
            "CARELOOP_TWILIO_API_BASE": server.base_url,
            "CARELOOP_TWILIO_VOICE_FROM": "+15005550006",
            "CARELOOP_VOICE_GATEWAY": "twilio",
            "CARELOOP_VOICE_CALLS_PER_SECOND": "50",
            "CARELOOP_VOICE_REDIAL_AFTER_HOURS": "4",
        }.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield server
        reset_caches()


def _campaign(db: Session, patients: int = 1, **plan_kwargs: Any) -> tuple[list[Patient], FollowUpPlan]:
    """Patients discharged 3 days before NOW, on a plan that calls first (then SMS, unless told)."""
    publish_all(db, get_settings().content_dir)
    dept = factories.department(db)
    people = []
    for _ in range(patients):
        person = factories.patient(db)
        encounter = factories.encounter(db, person, dept, started=NOW - timedelta(days=7))
        encounter.ended_at = NOW - timedelta(days=3, hours=2)
        people.append(person)
    plan = FollowUpPlan(
        name="calls",
        questionnaire_id="nps",
        encounter_kinds=["discharge"],
        department_ids=[dept.id],
        offsets_days=[3],
        send_hour=10,
        **({"channels": ["voice", "sms"], "resend_after_hours": 48} | plan_kwargs),
    )
    db.add(plan)
    db.flush()
    run_planner(db, NOW)
    db.commit()
    return people, plan


def _calls(db: Session) -> list[VoiceCall]:
    db.expire_all()
    return list(db.scalars(sa.select(VoiceCall).order_by(VoiceCall.id)))


def _status(db: Session, fake: FakeTwilioVoice, call: VoiceCall, status: str, at: datetime, seq: int) -> None:
    """Twilio's status callback for the call, parsed by the real gateway, recorded at `at`."""
    sid = call.provider_id or ""
    _, params, _ = fake.status_callback(sid, status, sequence=seq, duration=0)
    voice = TwilioVoice(None, caller_id="+15005550006")  # type: ignore[arg-type]  # parsing needs no client
    row = db.get(VoiceCall, call.id)
    assert row is not None
    do_record_call_status(db, row, voice.parse_status(params), at)
    db.commit()


def test_a_voice_step_becomes_a_call_the_job_dials_through_the_gateway(
    fake: FakeTwilioVoice, db: Session
) -> None:
    (person,), plan = _campaign(db)
    assert dispatch_due(NOW) == {"sent:voice": 1}
    (call,) = _calls(db)
    assert call.state is CallState.QUEUED and call.plan_id == plan.id and call.placed_at is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0  # a call, not a link
    assert dial_due_calls(NOW)["placed"] == 1
    (call,) = _calls(db)
    assert call.placed_at == NOW and call.provider_id == fake.calls[-1].sid
    assert fake.calls[-1].params["To"] == person.phone
    assert dial_due_calls(NOW + timedelta(seconds=20)) == {"none_due": 1}  # never twice
    assert len(fake.calls) == 1


@pytest.mark.parametrize("why", ["no_consent", "excluded:do_not_disturb", "excluded:dispute"])
def test_an_opted_out_or_excluded_patient_is_never_dialled_and_the_plan_moves_on(
    fake: FakeTwilioVoice, db: Session, why: str
) -> None:
    (person,), _ = _campaign(db)
    assert dispatch_due(NOW) == {"sent:voice": 1}
    if why == "no_consent":  # said no after the call was queued: the dialer checks again
        do_revoke_consent(
            db, patient_id=person.id, purpose=ConsentPurpose.CARE, channel=Channel.VOICE, source="t"
        )
    else:
        setattr(db.get(Patient, person.id), why.split(":")[1], True)
    db.commit()
    assert dial_due_calls(NOW) == {f"suppressed:{why}": 1}
    assert fake.requests == []
    (call,) = _calls(db)
    assert call.state is CallState.FAILED and call.skip_reason == why and call.placed_at is None
    task = db.scalars(sa.select(OutreachTask)).one()
    assert task.next_attempt_at == NOW  # due again at once: the dispatcher decides what follows
    after = dispatch_due(NOW + timedelta(seconds=1))
    if why == "no_consent":
        assert after == {"sent:sms": 1}  # consent is per channel: the plan's next channel
    assert len(_calls(db)) == 1 and fake.requests == []


def test_quiet_hours_in_the_patients_own_zone_hold_the_call_until_morning(
    fake: FakeTwilioVoice, db: Session
) -> None:
    (shanghai, london), _ = _campaign(db, patients=2)
    assert dispatch_due(NOW) == {"sent:voice": 2}
    db.get(Patient, london.id).timezone = "Europe/London"  # type: ignore[union-attr]  # moved since
    db.commit()
    assert dial_due_calls(LATE) == {"deferred:quiet_hours": 1, "placed": 1}
    assert [r.params["To"] for r in fake.calls] == [london.phone]
    held = next(c for c in _calls(db) if c.patient_id == shanghai.id)
    assert held.state is CallState.QUEUED and held.dial_after == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    assert dial_due_calls(LATE + timedelta(hours=1)) == {"none_due": 1}
    # the plan's resend time passes while the call waits: the dispatcher does not queue a second one
    # (London's call, placed and never heard of again, is resent, but it is night there now)
    assert dispatch_due(NOW + timedelta(hours=49)) == {"waiting:call": 1, "quiet_hours": 1}
    assert dial_due_calls(datetime(2026, 11, 21, 0, 1, tzinfo=UTC))["placed"] == 1
    assert [r.params["To"] for r in fake.calls] == [london.phone, shanghai.phone]
    assert len(_calls(db)) == 2


def test_the_line_limit_and_the_rate_hold_calls_back(
    fake: FakeTwilioVoice, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARELOOP_VOICE_MAX_CONCURRENT_CALLS", "2")
    monkeypatch.setenv("CARELOOP_VOICE_CALLS_PER_SECOND", "5")
    get_settings.cache_clear()
    _campaign(db, patients=3)
    assert dispatch_due(NOW) == {"sent:voice": 3}
    began = time.monotonic()
    assert dial_due_calls(NOW)["placed"] == 2
    assert time.monotonic() - began >= 0.19  # 5 per second: the second waited for its turn
    assert len(fake.calls) == 2
    assert dial_due_calls(NOW + timedelta(seconds=15)) == {"lines_full": 1}
    first = _calls(db)[0]
    _status(db, fake, first, "completed", NOW + timedelta(seconds=20), seq=3)  # a line is free again
    assert dial_due_calls(NOW + timedelta(seconds=30))["placed"] == 1
    assert len(fake.calls) == 3 and all(c.placed_at is not None for c in _calls(db))


def test_two_dialer_runs_at_once_never_fill_more_than_the_line_limit(
    fake: FakeTwilioVoice, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' runs overlapping (threads here, each with its own database connection and lock
    handle, as two processes have): one dials, the other does nothing, and the lines hold."""
    monkeypatch.setenv("CARELOOP_VOICE_MAX_CONCURRENT_CALLS", "2")
    monkeypatch.setenv("CARELOOP_VOICE_CALLS_PER_SECOND", "5")  # a run takes >= 0.2 s for two calls
    get_settings.cache_clear()
    _campaign(db, patients=4)
    assert dispatch_due(NOW) == {"sent:voice": 4}
    start = threading.Barrier(2)
    outcomes: list[Counter[str]] = []

    def run() -> None:
        start.wait()
        outcomes.append(dial_due_calls(NOW))

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=30)
    assert sorted(o["placed"] for o in outcomes) == [0, 2]
    assert any(o == {"another_run_dialling": 1} for o in outcomes)
    assert len(fake.calls) == 2
    assert sum(c.placed_at is not None for c in _calls(db)) == 2
    assert dial_due_calls(NOW + timedelta(seconds=15)) == {"lines_full": 1}  # the lock was let go


@pytest.mark.parametrize("reached", ["no-answer", "busy", "machine"])
def test_a_call_that_reaches_nobody_is_redialled_after_n_hours_then_lost_after_m_tries(
    fake: FakeTwilioVoice, db: Session, reached: str
) -> None:
    _campaign(db, channels=["voice"], attempts_per_channel=2)
    moment = NOW
    for attempt in (1, 2):
        assert dispatch_due(moment) == {"sent:voice": 1}
        assert dial_due_calls(moment)["placed"] == 1
        call = _calls(db)[-1]
        assert call.attempt == attempt
        ended = moment + timedelta(minutes=1)
        if reached == "machine":  # the stream met a machine and hung up (as web/voice_stream.py ends it)
            row = db.get(VoiceCall, call.id)
            assert row is not None
            do_end_call(
                db,
                row,
                state=CallState.COMPLETED,
                outcome=Outcome.MACHINE,
                skipped=[],
                fallbacks=0,
                now=ended,
            )
            db.commit()
        else:
            _status(db, fake, call, reached, ended, seq=2)
        task = db.scalars(sa.select(OutreachTask)).one()
        assert task.next_attempt_at == ended + timedelta(hours=4)
        assert dispatch_due(ended + timedelta(hours=3)) == {}  # not before N hours
        moment = ended + timedelta(hours=4, minutes=1)
    assert dispatch_due(moment) == {"lost:no_answer": 1}
    assert len(fake.calls) == 2 and len(_calls(db)) == 2
    db.expire_all()
    task = db.scalars(sa.select(OutreachTask)).one()
    assert task.status is OutreachStatus.LOST
    loss = db.scalars(sa.select(Task).where(Task.kind == TaskKind.LOSS_TO_FOLLOW_UP)).one()
    assert loss.source_id == task.id
    assert (
        db.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "voice.redial_scheduled")
        )
        == 2
    )


def test_after_the_last_unanswered_call_the_plan_falls_back_to_its_next_channel(
    fake: FakeTwilioVoice, db: Session
) -> None:
    _campaign(db, attempts_per_channel=1)
    assert dispatch_due(NOW) == {"sent:voice": 1}
    assert dial_due_calls(NOW)["placed"] == 1
    _status(db, fake, _calls(db)[0], "no-answer", NOW + timedelta(minutes=1), seq=2)
    assert dispatch_due(NOW + timedelta(hours=5)) == {"sent:sms": 1}
    assert len(fake.calls) == 1


def test_a_completed_survey_call_is_not_redialled(fake: FakeTwilioVoice, db: Session) -> None:
    _campaign(db)
    dispatch_due(NOW)
    dial_due_calls(NOW)
    row = _calls(db)[0]
    do_end_call(
        db, row, state=CallState.COMPLETED, outcome=Outcome.INCOMPLETE, skipped=[], fallbacks=0, now=NOW
    )
    db.commit()
    task = db.scalars(sa.select(OutreachTask)).one()
    assert task.next_attempt_at == NOW + timedelta(hours=4)  # hung up mid-survey: retried per policy
