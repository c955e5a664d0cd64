"""Call records: the do_* verbs that create a call, place or skip it, follow its status, attach the stream,
and store answers, recording and outcome. Every change of a call goes through one of them, and each writes
its audit row in the same transaction (details name states and items, never numbers or what was said)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of, latest_version
from backend.followup.responses import (
    AlreadyCompleted,
    IncompleteResponse,
    do_complete_response,
    do_save_answers,
    do_start_response,
)
from backend.models import (
    OutreachTask,
    Patient,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
    TaskKind,
    TaskPriority,
    VoiceCall,
)
from backend.models.base import utcnow
from backend.services import audit
from backend.services.tasks import do_raise_task
from backend.voice.redial import do_schedule_redial
from bots.domain import Channel, pick_language
from nlu.safety import SafetyHit
from questionnaires.model import Questionnaire
from voice_ai.call_events import FINAL, CallState, Outcome, SaveAnswer
from voice_ai.gateway import AnsweredBy, CallStatus, GatewayName, RecordingReady

log = logging.getLogger(__name__)


class UnknownCall(LookupError):
    """No such call, or the token does not sign it."""


def _audit(session: Session, call: VoiceCall, action: str, **detail: Any) -> None:
    audit.record(session, action, patient_id=call.patient_id, subject=("voice_call", call.id), **detail)


def do_create_call(
    session: Session,
    *,
    patient: Patient,
    questionnaire_id: str,
    gateway: GatewayName,
    task: OutreachTask | None = None,
    now: datetime | None = None,
    dial_after: datetime | None = None,
) -> VoiceCall:
    """A call record for the next attempt, with the response its answers go to (the task's, if any);
    the dialer places it from `dial_after` on (None: whenever it is due)."""
    now = now or utcnow()
    lang = pick_language(patient.language)
    response = None
    if task is not None:
        response = session.scalars(
            sa.select(QuestionnaireResponse).where(QuestionnaireResponse.outreach_task_id == task.id)
        ).first()
    if response is None:
        version = latest_version(session, questionnaire_id)
        if version is None:
            raise LookupError(f"questionnaire {questionnaire_id} is not published")
        response = do_start_response(
            session,
            version=version,
            patient_id=patient.id,
            channel=Channel.VOICE,
            language=lang,
            task=task,
            now=now,
        )
    attempts = 0
    if task is not None:
        attempts = (
            session.scalar(
                sa.select(sa.func.count()).select_from(VoiceCall).where(VoiceCall.outreach_task_id == task.id)
            )
            or 0
        )
    call = VoiceCall(
        patient_id=patient.id,
        outreach_task_id=task.id if task else None,
        plan_id=task.plan_id if task else None,
        response_id=response.id,
        attempt=attempts + 1,
        gateway=gateway,
        language=lang,
        created_at=now,
        dial_after=dial_after,
    )
    session.add(call)
    session.flush()
    audit.record(
        session,
        "voice.call_created",
        patient_id=patient.id,
        subject=("voice_call", call.id),
        attempt=call.attempt,
        gateway=str(gateway),
    )
    return call


def do_mark_placed(session: Session, call: VoiceCall, provider_id: str, now: datetime | None = None) -> None:
    call.provider_id, call.placed_at = provider_id, now or utcnow()
    _audit(session, call, "voice.call_placed")


def do_defer_call(session: Session, call: VoiceCall, until: datetime | None, reason: str) -> None:
    """The gates say not now (quiet hours, the daily cap): the dialer tries again from `until`."""
    call.dial_after = until
    _audit(session, call, "voice.call_deferred", reason=reason)


def do_skip_call(session: Session, call: VoiceCall, reason: str, now: datetime) -> None:
    """The gates say never (opted out, excluded, unreachable): the call ends undialled."""
    call.state, call.ended_at, call.skip_reason = CallState.FAILED, now, reason[:32]
    _audit(session, call, "voice.call_skipped", reason=reason)
    do_schedule_redial(session, call, now)


def do_fail_dial(
    session: Session,
    call: VoiceCall,
    now: datetime,
    *,
    code: str | None = None,
    permanent: bool | None = None,
) -> None:
    """The call could not be placed: no usable number (no code), or the gateway refused it (its code, and
    whether a retry can help). The dialer's redial policy decides what comes next."""
    call.state, call.ended_at = CallState.FAILED, now
    if code is None and permanent is None:
        _audit(session, call, "voice.call_unreachable")
    else:
        _audit(session, call, "voice.call_refused", code=code, permanent=permanent)


def call_by_provider(session: Session, gateway: GatewayName, provider_id: str) -> VoiceCall | None:
    return session.scalars(
        sa.select(VoiceCall).where(VoiceCall.gateway == gateway, VoiceCall.provider_id == provider_id)
    ).first()


def do_record_call_status(session: Session, call: VoiceCall, status: CallStatus, now: datetime) -> bool:
    """A gateway status callback. Older (by sequence) or after-the-end callbacks change nothing."""
    if (
        status.sequence is not None
        and call.last_status_seq is not None
        and status.sequence <= call.last_status_seq
    ):
        return False
    if status.sequence is not None:
        call.last_status_seq = status.sequence
    if status.answered_by is not None:
        call.answered_by = status.answered_by
    if status.state is CallState.ANSWERED and call.answered_at is None:
        call.answered_at = now
    if status.duration_seconds is not None:
        call.duration_seconds = status.duration_seconds
    if call.state in FINAL:
        return False
    if status.state in {CallState.BUSY, CallState.NO_ANSWER, CallState.FAILED}:
        call.state, call.ended_at = status.state, now
        call.outcome = None
    elif status.state is CallState.COMPLETED:
        # The stream sets the outcome; a call completed without one never reached our stream.
        call.state, call.ended_at = (CallState.COMPLETED if call.outcome else CallState.FAILED), now
    elif status.state is CallState.RINGING and call.state is CallState.QUEUED:
        call.state = CallState.RINGING
    _audit(session, call, "voice.call_status", status=status.raw_status)
    do_schedule_redial(session, call, now)
    return True


def call_to_answer(session: Session, call_id: int, call_sid: str | None) -> VoiceCall | None:
    """The call the gateway asks instructions for, unless another CallSid already holds it."""
    call = session.get(VoiceCall, call_id)
    if call is None or call.provider_id not in (None, call_sid):
        return None
    return call


def do_record_answered_by(session: Session, call: VoiceCall, by: AnsweredBy) -> None:
    """The gateway's answering-machine detection, told when it asks for the call's instructions."""
    call.answered_by = by
    _audit(session, call, "voice.answered_by", by=str(by))


def do_record_recording(session: Session, call: VoiceCall, ready: RecordingReady) -> None:
    call.recording_id, call.recording_url = ready.recording_id, ready.url
    _audit(session, call, "voice.recording")


def response_of(session: Session, call: VoiceCall) -> tuple[QuestionnaireResponse, Questionnaire]:
    response = session.get(QuestionnaireResponse, call.response_id)
    if response is None:
        raise UnknownCall(f"call {call.id} has no response")
    version = session.get(QuestionnaireVersion, response.version_id)
    assert version is not None
    return response, definition_of(version)


def do_start_stream(
    session: Session, call_id: int, call_sid: str
) -> tuple[VoiceCall, Patient, QuestionnaireResponse, Questionnaire]:
    """The Media Stream opens for `call_id` and binds its CallSid to the call. UnknownCall when the call is
    over, belongs to another CallSid, or cannot be asked (no birth date to check, already answered)."""
    call = session.get(VoiceCall, call_id)
    if call is None or call.state in FINAL:
        raise UnknownCall(f"call {call_id} is unknown or over")
    if call.provider_id and call.provider_id != call_sid:
        raise UnknownCall(f"call {call_id} belongs to another CallSid")
    patient = session.get(Patient, call.patient_id)
    response, q = response_of(session, call)
    if patient is None or patient.birth_date is None or response.status is ResponseStatus.COMPLETED:
        raise UnknownCall(f"call {call_id}: no birth date to check, or already answered")
    call.provider_id = call_sid
    _audit(session, call, "voice.stream_started")
    return call, patient, response, q


def do_change_call_state(session: Session, call: VoiceCall, state: CallState, now: datetime) -> None:
    """The call session moved on (identity checked, a machine met, the survey begun). Final states are
    do_end_call's: here they change nothing."""
    if state in FINAL:
        return
    call.state = state
    if state is CallState.MACHINE:
        call.answered_by = AnsweredBy.MACHINE
    call.answered_at = call.answered_at or now
    _audit(session, call, "voice.call_state", state=state.value)


def do_save_call_answer(
    session: Session,
    call: VoiceCall,
    answer: SaveAnswer,
    *,
    audio: str | None,
    skipped: list[str],
    now: datetime,
) -> None:
    """Into the same response store as the web form and chat, plus the call's transcript line (what was
    heard, how sure, by speech, keypad or recording, and the sealed audio of an open answer)."""
    response, q = response_of(session, call)
    do_save_answers(session, response, q, {answer.item_id: answer.value}, skipped=skipped, now=now)
    line = {
        "item": answer.item_id,
        "heard": answer.transcript,
        "confidence": answer.confidence,
        "via": str(answer.via),
        "confirmed": answer.confirmed,  # heard below the threshold, read back, and the caller said yes
        "audio": audio,
    }
    call.transcripts = [*call.transcripts, line]
    _audit(session, call, "voice.answer_saved", item=answer.item_id, via=str(answer.via))


def do_staff_callback(
    session: Session, call: VoiceCall, reason: str, now: datetime, *, urgent: bool = False
) -> None:
    task = do_raise_task(
        session,
        kind=TaskKind.CALLBACK,
        priority=TaskPriority.URGENT if urgent else TaskPriority.NORMAL,
        title=f"voice:{reason}"[:200],
        source=("voice_call", call.id),
        patient_id=call.patient_id,
        department_id=_department(session, call),
        now=now,
    )
    call.callback_task_id = task.id
    _audit(session, call, "voice.callback_raised", task=task.id)


def do_red_flag(
    session: Session, call: VoiceCall, hit: SafetyHit, heard: str, item_id: str | None, now: datetime
) -> None:
    """An emergency heard during the call: an urgent hand-off task at once (the call goes on with the
    guidance and the offer of a person)."""
    category = hit.emergency.value if hit.emergency is not None else "emergency"
    do_raise_task(
        session,
        kind=TaskKind.HANDOFF,
        priority=TaskPriority.EMERGENCY,
        # what was heard stays in the call's transcript, not in the task's title
        title=f"voice:emergency:{category}:{item_id or 'call'}"[:200],
        source=("voice_call", call.id),
        patient_id=call.patient_id,
        department_id=_department(session, call),
        now=now,
    )
    audit.record(
        session,
        "voice.red_flag",
        patient_id=call.patient_id,
        subject=("voice_call", call.id),
        emergency=category,
    )


def _department(session: Session, call: VoiceCall) -> int | None:
    response = session.get(QuestionnaireResponse, call.response_id) if call.response_id else None
    return response.department_id if response else None


def do_record_hangup(session: Session, call: VoiceCall, outcome: Outcome) -> None:
    """The call session hangs up with `outcome`; do_end_call closes the record when the stream ends."""
    call.outcome = outcome
    _audit(session, call, "voice.hangup", outcome=outcome.value)


def do_end_call(
    session: Session,
    call: VoiceCall,
    *,
    state: CallState,
    outcome: Outcome | None,
    skipped: list[str],
    fallbacks: int,
    now: datetime,
) -> None:
    """The stream is over: a finished survey completes the response (scores, findings, staff tasks, as in
    chat); anything less keeps the partial answers in progress for the next attempt."""
    answered = call.answered_at is not None or state not in {CallState.QUEUED, CallState.RINGING}
    call.outcome = outcome or (Outcome.INCOMPLETE if answered else None)
    call.state = state if state in FINAL else CallState.FAILED
    call.fallbacks = fallbacks
    call.ended_at = call.ended_at or now
    if call.answered_at is not None and call.duration_seconds is None:
        call.duration_seconds = max(0, round((now - call.answered_at).total_seconds()))
    response, _ = response_of(session, call)
    if response.status is ResponseStatus.IN_PROGRESS:
        response.skipped = sorted(set(response.skipped) | set(skipped))
    if call.outcome is Outcome.COMPLETED:
        try:
            do_complete_response(session, response, now=now)
        except AlreadyCompleted:
            pass
        except IncompleteResponse as exc:  # the questionnaire changed under the call: keep what we have
            log.warning("voice call %s: %s", call.id, exc)
            call.outcome = Outcome.INCOMPLETE
    outcome_code = call.outcome.value if call.outcome else None
    _audit(session, call, "voice.call_ended", outcome=outcome_code, answers=len(call.transcripts))
    do_schedule_redial(session, call, now)
