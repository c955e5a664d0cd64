"""Placing calls: the gateway from settings, and the job that dials one call record by id."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.models import Department, Patient, QuestionnaireResponse, VoiceCall
from backend.models.base import utcnow
from backend.voice.call_windows import Defaults, SiteRules, next_opening, resolve
from backend.voice.calls import do_defer_call, do_fail_dial, do_mark_placed
from voice_ai.call_events import CallState
from voice_ai.gateway import CallRequest, Gateway, GatewayError, GatewayName

log = logging.getLogger(__name__)


def gateway_from_settings(settings: Settings) -> Gateway:
    if settings.voice_gateway is GatewayName.TWILIO:
        from channels.sms_twilio import twilio_client
        from voice_ai.gateway_twilio import TwilioVoice

        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_voice_from):
            raise RuntimeError(
                "voice over Twilio needs CARELOOP_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _VOICE_FROM"
            )
        client = twilio_client(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            api_base=settings.twilio_api_base,
            timeout=settings.send_timeout_seconds,
        )
        return TwilioVoice(
            client, caller_id=settings.twilio_voice_from, record=settings.voice_record_at_gateway
        )
    raise RuntimeError(
        f"voice gateway {settings.voice_gateway.value!r} is not placed from settings (the simulated "
        "gateway is built by tests and benches with a caller script)"
    )


def call_request(settings: Settings, call: VoiceCall, to: str, caller_id: str | None = None) -> CallRequest:
    base = f"{settings.public_url}/hooks/twilio/voice"
    recording = f"{base}/recording" if settings.voice_record_at_gateway else None
    return CallRequest(
        to=to,
        call_ref=str(call.id),
        answer_url=f"{base}/answer?call={call.id}",
        status_url=f"{base}/status",
        recording_url=recording,
        caller_id=caller_id,
    )


def site_rules(session: Session, call: VoiceCall, settings: Settings) -> SiteRules:
    """The call window and caller id of the site serving the call's department (the response's: the
    follow-up task's department, or none for a call staff placed without one)."""
    code = None
    if call.response_id is not None:
        code = session.scalar(
            sa.select(Department.code)
            .join(QuestionnaireResponse, QuestionnaireResponse.department_id == Department.id)
            .where(QuestionnaireResponse.id == call.response_id)
        )
    return resolve(settings.voice_sites, code, site_defaults(settings))


def site_defaults(settings: Settings) -> Defaults:
    return Defaults(
        zone=settings.default_timezone,
        windows=settings.voice_call_windows,
        holidays=settings.voice_holidays,
        caller_id=settings.twilio_voice_from,
    )


def defer_outside_window(session: Session, call: VoiceCall, rules: SiteRules, now: datetime) -> bool:
    """Outside the site's call window (or on its holiday) the call waits for the next opening: True."""
    opens = next_opening(rules, now)
    if opens is None:
        return False
    do_defer_call(session, call, opens, "call_window")
    return True


def dial(
    session: Session,
    call: VoiceCall,
    gateway: Gateway,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> str:
    """Ask the gateway to dial `call`; a refusal ends the call record (the dialer's redial policy decides
    what comes next). Returns what happened, for logs and tests."""
    settings, now = settings or get_settings(), now or utcnow()
    if call.state is not CallState.QUEUED or call.provider_id is not None:
        return "skipped"
    patient = session.get(Patient, call.patient_id)
    if patient is None or not patient.phone or patient.invalid_contact:
        do_fail_dial(session, call, now)
        return "unreachable"
    rules = site_rules(session, call, settings)
    if defer_outside_window(session, call, rules, now):
        return "deferred:call_window"
    try:
        placed = gateway.place_call(call_request(settings, call, patient.phone, rules.caller_id))
    except GatewayError as exc:
        do_fail_dial(session, call, now, code=exc.code, permanent=exc.permanent)
        return f"refused:{exc.code}"
    do_mark_placed(session, call, placed.provider_id, now)
    return "placed"


def dial_job(call_id: int) -> str:
    """RQ job: dial one call record (its own transaction); the vendor request runs in this worker."""
    with session_scope() as session:
        call = session.get(VoiceCall, call_id)
        if call is None:
            return "missing"
        return dial(session, call, gateway_from_settings(get_settings()))
