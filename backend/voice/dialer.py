"""Placing calls: the gateway from settings, and the job that dials one call record by id."""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.models import Department, Patient, QuestionnaireResponse, Site, SiteCalendarDay, VoiceCall
from backend.models.base import utcnow
from backend.models.booking import CalendarDayKind
from backend.outbox.overrides import effective_settings
from backend.voice.call_media import stream_parameters, stream_url
from backend.voice.call_windows import (
    CampusVoice,
    Defaults,
    SiteRules,
    VoiceSite,
    merge_sites,
    next_opening,
    resolve,
)
from backend.voice.calls import (
    call_by_provider,
    do_defer_call,
    do_fail_dial,
    do_mark_placed,
    do_record_call_status,
)
from voice_ai.call_events import CallState
from voice_ai.gateway import AnsweredBy, CallRequest, CallStatus, Gateway, GatewayError, GatewayName

log = logging.getLogger(__name__)
_sip_gateway: Gateway | None = None  # one per process: it owns the sockets of the calls it placed
_sip_lock = threading.Lock()
UNPLACED_WAIT_SECONDS = 5.0  # a status may arrive before the dialer has stored the call's provider id


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
    if settings.voice_gateway is GatewayName.SIP:
        return sip_gateway(settings)
    raise RuntimeError(
        f"voice gateway {settings.voice_gateway.value!r} is not placed from settings (the simulated "
        "gateway is built by tests and benches with a caller script)"
    )


def sip_gateway(settings: Settings) -> Gateway:
    """The process's SIP gateway, built on first use: its calls live in this process, so it is kept."""
    global _sip_gateway
    from voice_ai.gateway_sip import SipGateway, SipTrunk
    from voice_ai.sip_message import Codec

    with _sip_lock:
        if _sip_gateway is None:
            if not settings.sip_trunk_host:
                raise RuntimeError("voice over SIP needs CARELOOP_SIP_TRUNK_HOST")
            trunk = SipTrunk(
                host=settings.sip_trunk_host,
                port=settings.sip_trunk_port,
                username=settings.sip_username,
                password=settings.sip_password.get_secret_value() if settings.sip_password else None,
                domain=settings.sip_domain,
                caller_id=settings.sip_caller_id or "careloop",
                local_address=settings.sip_local_address,
                rtp_ports=(settings.sip_rtp_port_min, settings.sip_rtp_port_max),
                codecs=tuple(Codec[name] for name in settings.sip_codecs.split(",")),
            )

            def stream_for(request: CallRequest, by: AnsweredBy) -> tuple[str, dict[str, str]]:
                return stream_url(settings), stream_parameters(settings, int(request.call_ref), by)

            _sip_gateway = SipGateway(trunk, stream_for, record_gateway_status)
        return _sip_gateway


def close_sip_gateway() -> None:
    """Hang up this process's SIP calls and release the gateway (shutdown, and between tests)."""
    global _sip_gateway
    with _sip_lock:
        gateway, _sip_gateway = _sip_gateway, None
    if gateway is not None:
        gateway.close()  # type: ignore[attr-defined]


def record_gateway_status(status: CallStatus, gateway: GatewayName = GatewayName.SIP) -> bool:
    """A status from a gateway that reports in-process (SIP): applied like Twilio's status callback.
    The call's provider id is stored by the dialer once place_call returns, which a fast status (an
    immediate busy) can beat: wait a little for it. False: no such call."""
    deadline = time.monotonic() + UNPLACED_WAIT_SECONDS
    while True:
        with session_scope() as db:
            row = call_by_provider(db, gateway, status.provider_id)
            if row is not None:
                do_record_call_status(db, row, status, utcnow())
                return True
        if time.monotonic() >= deadline:
            log.info("%s status for an unknown call", gateway.value)
            return False
        time.sleep(0.1)


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
    return resolve(effective_sites(session, settings), code, site_defaults(settings))


def effective_sites(session: Session, settings: Settings) -> dict[str, VoiceSite]:
    """`CARELOOP_VOICE_SITES` with the active campus rows of the admin console laid over it."""
    rows = session.scalars(sa.select(Site).where(Site.active.is_(True)))
    holidays: dict[int, list[date]] = {}
    for site_id, day in session.execute(
        sa.select(SiteCalendarDay.site_id, SiteCalendarDay.day).where(
            SiteCalendarDay.kind == CalendarDayKind.HOLIDAY
        )
    ):
        holidays.setdefault(site_id, []).append(day)
    campuses = [
        CampusVoice(
            code=r.code,
            timezone=r.timezone,
            departments=r.voice_departments,
            windows=r.voice_windows,
            caller_id=r.voice_caller_id,
            holidays=sorted(holidays[r.id]) if r.id in holidays else None,
        )
        for r in rows
    ]
    return merge_sites(settings.voice_sites, campuses)


def site_defaults(settings: Settings) -> Defaults:
    return Defaults(
        zone=settings.default_timezone,
        windows=settings.voice_call_windows,
        holidays=settings.voice_holidays,
        caller_id=(
            settings.sip_caller_id
            if settings.voice_gateway is GatewayName.SIP
            else settings.twilio_voice_from
        ),
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
        return dial(session, call, gateway_from_settings(effective_settings(session)))
