"""Call records: the do_* verbs that create a call, follow its status, and store answers and outcome."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from backend.app.settings import Settings
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
from backend.security.crypto import current_cipher
from backend.services import audit
from backend.services.tasks import do_raise_task
from backend.voice.redial import do_schedule_redial
from bots.domain import Channel, pick_language
from nlu.safety import SafetyHit
from voice_ai.gateway import CallStatus, RecordingReady
from voice_ai.session import FINAL, CallState, Outcome

log = logging.getLogger(__name__)


class UnknownCall(LookupError):
    """No such call, or the token does not sign it."""


def stream_token(settings: Settings, call_id: int) -> str:
    """Signs the call id carried in the Media Stream's parameters: only our TwiML can open a stream."""
    return URLSafeSerializer(settings.secret_key.get_secret_value(), salt="voice-stream").dumps(call_id)


def read_stream_token(settings: Settings, token: str) -> int:
    try:
        value = URLSafeSerializer(settings.secret_key.get_secret_value(), salt="voice-stream").loads(token)
    except BadSignature as exc:
        raise UnknownCall("stream token does not verify") from exc
    if not isinstance(value, int):
        raise UnknownCall("stream token does not name a call")
    return value


def do_create_call(
    session: Session,
    *,
    patient: Patient,
    questionnaire_id: str,
    gateway: str,
    task: OutreachTask | None = None,
    now: datetime | None = None,
) -> VoiceCall:
    """A call record for the next attempt, with the response its answers go to (the task's, if any)."""
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
    )
    session.add(call)
    session.flush()
    audit.record(
        session,
        "voice.call_created",
        patient_id=patient.id,
        subject=("voice_call", call.id),
        attempt=call.attempt,
        gateway=gateway,
    )
    return call


def do_mark_placed(session: Session, call: VoiceCall, provider_id: str, now: datetime | None = None) -> None:
    call.provider_id, call.placed_at = provider_id, now or utcnow()
    audit.record(session, "voice.call_placed", patient_id=call.patient_id, subject=("voice_call", call.id))


def call_by_provider(session: Session, gateway: str, provider_id: str) -> VoiceCall | None:
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
        call.answered_by = status.answered_by.value
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
    audit.record(
        session,
        "voice.call_status",
        patient_id=call.patient_id,
        subject=("voice_call", call.id),
        status=status.raw_status,
    )
    do_schedule_redial(session, call, now)
    return True


def do_record_recording(session: Session, call: VoiceCall, ready: RecordingReady) -> None:
    call.recording_id, call.recording_url = ready.recording_id, ready.url
    audit.record(session, "voice.recording", patient_id=call.patient_id, subject=("voice_call", call.id))


def keep_answer_audio(settings: Settings, call_id: int, pcm: bytes) -> str:
    """An open answer's audio, sealed under the data key with the call id bound in; returns its name."""
    name = f"{secrets.token_hex(16)}.voice"
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    (settings.media_dir / name).write_bytes(current_cipher().seal(f"voice:{call_id}", pcm))
    return name


def load_answer_audio(settings: Settings, call_id: int, name: str) -> bytes:
    if not name.endswith(".voice") or "/" in name or name.startswith("."):
        raise FileNotFoundError(name)
    return current_cipher().unseal(f"voice:{call_id}", (settings.media_dir / name).read_bytes())


def response_of(session: Session, call: VoiceCall) -> tuple[QuestionnaireResponse, Any]:
    response = session.get(QuestionnaireResponse, call.response_id)
    if response is None:
        raise UnknownCall(f"call {call.id} has no response")
    version = session.get(QuestionnaireVersion, response.version_id)
    assert version is not None
    return response, definition_of(version)


def do_save_call_answer(
    session: Session,
    call: VoiceCall,
    item_id: str,
    value: Any,
    transcript: dict[str, Any],
    skipped: list[str],
    now: datetime,
) -> None:
    """Into the same response store as the web form and chat, plus the call's transcript line."""
    response, q = response_of(session, call)
    do_save_answers(session, response, q, {item_id: value}, skipped=skipped, now=now)
    call.transcripts = [*call.transcripts, transcript]


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


def do_red_flag(
    session: Session, call: VoiceCall, hit: SafetyHit, heard: str, item_id: str | None, now: datetime
) -> None:
    """An emergency heard during the call: an urgent hand-off task at once (the call goes on with the
    guidance and the offer of a person)."""
    category = hit.emergency.value if hit.emergency is not None else "emergency"
    do_raise_task(
        session,
        kind=TaskKind.HANDOFF,
        priority=TaskPriority.URGENT,
        title=f"voice:emergency:{category}:{item_id or 'call'}: {heard}"[:200],
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
    audit.record(
        session,
        "voice.call_ended",
        patient_id=call.patient_id,
        subject=("voice_call", call.id),
        outcome=call.outcome.value if call.outcome else None,
        answers=len(call.transcripts),
    )
    do_schedule_redial(session, call, now)
