"""Calls over a SIP trunk, end to end: our gateway dials through kamailio to baresip, which answers and
talks back over RTP and types its answers as RFC 4733 keys; our real server runs the survey over the
Media Stream the gateway bridges to, and the call's statuses reach the database through the dialer."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from backend.app import periodic
from backend.app.settings import get_settings
from backend.followup.catalog import publish_all
from backend.models import ResponseStatus, VoiceCall
from backend.voice.calls import do_create_call
from backend.voice.dial_due import in_own_process, run_dialer
from backend.voice.dialer import close_sip_gateway, dial, gateway_from_settings
from tests import factories
from tests.backend.voice.conftest import BIRTH_KEYS, audit_trail, stored
from tests.sip_peers import Phone, needs_sip_peers, sip_phone
from voice_ai.audio import read_wav, silence, ulaw_to_pcm16, write_wav
from voice_ai.call_events import CallState, Outcome
from voice_ai.gateway import CallRequest, GatewayName
from voice_ai.gateway_sip import SipGateway
from voice_ai.rtp_bridge import SipCallLog
from voice_ai.tts import EspeakSynthesizer

pytestmark = [pytest.mark.speech, needs_sip_peers]
__all__ = ["sip_phone"]  # the fixture, used by name


@pytest.fixture
def gateway(voice_server: str, sip_phone: Phone, monkeypatch: pytest.MonkeyPatch) -> Iterator[SipGateway]:
    """The gateway as the dialer builds it from settings."""
    trunk = sip_phone.trunk()
    for name, value in {
        "VOICE_GATEWAY": "sip",
        "SIP_TRUNK_HOST": trunk.host,
        "SIP_TRUNK_PORT": str(trunk.port),
        "SIP_USERNAME": str(trunk.username),
        "SIP_PASSWORD": str(trunk.password),
        "SIP_DOMAIN": str(trunk.domain),
        "SIP_CALLER_ID": trunk.caller_id,
        "SIP_RTP_PORT_MIN": str(trunk.rtp_ports[0]),
        "SIP_RTP_PORT_MAX": str(trunk.rtp_ports[1]),
        "SIP_CODECS": "PCMA,PCMU",
    }.items():
        monkeypatch.setenv(f"CARELOOP_{name}", value)
    get_settings.cache_clear()
    gateway = gateway_from_settings(get_settings())
    assert isinstance(gateway, SipGateway) and gateway.trunk.password == trunk.password
    yield gateway
    close_sip_gateway()


def sip_call(db: Session, phone: str | None = None) -> VoiceCall:
    publish_all(db, get_settings().content_dir)
    person = factories.patient(db, language="en", phone=phone)
    call = do_create_call(db, patient=person, questionnaire_id="nps", gateway=GatewayName.SIP)
    db.commit()
    return call


def take_turns(line: SipCallLog, turns: list[Callable[[], object]], timeout: float = 40.0) -> None:
    """Answer a second into the prompt that asks (the caller may interrupt a prompt, as one who knows
    the survey does): real-time prompts run to minutes otherwise."""
    deadline = time.monotonic() + timeout
    spoken = 0  # our audible packets when the last answer was given
    for turn in turns:
        while line.audible_out < spoken + 50:  # 50 packets: a second of the next prompt
            assert time.monotonic() < deadline, f"no prompt to answer with turn {turns.index(turn)}"
            assert not line.ended_by, "the call ended before every answer was given"
            time.sleep(0.05)
        turn()
        spoken = line.audible_out


def press(phone: Phone, keys: str) -> Callable[[], object]:
    """Keys typed on the phone: baresip sends them as RFC 4733 events."""
    return lambda: phone.command("sndcode", keys)["ok"] is True or pytest.fail("baresip refused sndcode")


def say(phone: Phone, wav: Path) -> Callable[[], object]:
    """The phone's microphone switched to a recording (then its trailing silence)."""
    return lambda: (
        phone.command("ausrc", f"aufile,{wav}")["ok"] is True or pytest.fail("baresip refused ausrc")
    )


def answer_by_keypad(phone: Phone, line: SipCallLog, turns: list[str]) -> None:
    take_turns(line, [press(phone, keys) for keys in turns])


def loudest_sample(wav: Path) -> int:
    """The loudest sample of a baresip dump, once baresip has closed it (its header comes last)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            pcm, _ = read_wav(wav.read_bytes())
            break
        except wave.Error:
            assert time.monotonic() < deadline, "baresip did not finish its recording"
            time.sleep(0.2)
    samples = memoryview(pcm).cast("h")
    return max((abs(s) for s in samples), default=0)


def test_a_survey_answered_by_keypad_over_a_sip_trunk(
    voice_server: str, db: Session, sip_phone: Phone, gateway: SipGateway
) -> None:
    call = sip_call(db)
    before = set(sip_phone.dumps.glob("*-dec.wav"))
    assert dial(db, call, gateway) == "placed"  # the dialer's own path: provider id stored, audited
    db.commit()
    assert call.provider_id is not None
    line = gateway.calls[call.provider_id].log
    answer_by_keypad(sip_phone, line, [BIRTH_KEYS, "9#", "#"])
    gateway.wait(call.provider_id, 60)
    row, response = stored(db, call)
    # The session heard every key through RFC 4733 and stored the answer, as over Twilio.
    assert line.digits == BIRTH_KEYS + "9##"
    assert response.answers == {"recommend": 9} and response.skipped == ["reason"]
    assert response.status is ResponseStatus.COMPLETED and row.outcome is Outcome.COMPLETED
    assert [t["via"] for t in row.transcripts] == ["keypad"]
    # Our server hung up: the gateway sent BYE and the phone confirmed it; the final status landed.
    assert line.ended_by == "us" and line.bye_confirmed
    assert row.state is CallState.COMPLETED and row.answered_at is not None
    # Audio both ways: the phone's "yes" reached us; our prompts reached the phone (by its RTCP
    # reports, and loud in the recording of what it decoded).
    assert line.codec is not None and line.codec.name == "PCMA"
    assert line.audible_in > 10 and line.audible_out > 100
    assert 100 < line.peer_received <= line.rtp_out  # baresip reports every ~5 s: at least one came
    (heard,) = set(sip_phone.dumps.glob("*-dec.wav")) - before
    assert loudest_sample(heard) > 3000
    actions = [action for action, _ in audit_trail(db, call.id)]
    assert actions[:2] == ["voice.call_created", "voice.call_placed"] and actions[-1] == "voice.call_ended"


def test_the_phone_hanging_up_ends_the_stream_and_the_call(
    voice_server: str, db: Session, sip_phone: Phone, gateway: SipGateway
) -> None:
    call = sip_call(db)
    placed = gateway.place_call(
        CallRequest(to="short", call_ref=str(call.id), answer_url="", status_url="", ring_seconds=10)
    )
    call.provider_id = placed.provider_id
    db.commit()
    line = gateway.wait(placed.provider_id, 30)
    deadline = time.monotonic() + 10
    while db.get(VoiceCall, call.id).outcome is None and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.1)
        db.expire_all()
    row, response = stored(db, call)
    # baresip hung up when its WAV ended (2 s): we answered its BYE and told our server `stop`.
    assert line.ended_by == "them" and line.bye_confirmed
    assert row.ended_at is not None and row.outcome is Outcome.INCOMPLETE
    assert response.answers == {}
    assert line.rtp_in > 50  # its two seconds of audio arrived


def test_a_phone_that_takes_only_mu_law_gets_mu_law(
    voice_server: str, db: Session, sip_phone: Phone, gateway: SipGateway
) -> None:
    call = sip_call(db)
    before = set(sip_phone.dumps.glob("*-dec.wav"))
    placed = gateway.place_call(
        CallRequest(to="mulaw", call_ref=str(call.id), answer_url="", status_url="", ring_seconds=10)
    )
    line = gateway.calls[placed.provider_id].log
    deadline = time.monotonic() + 20
    while line.audible_out < 100 and time.monotonic() < deadline:  # two seconds of the greeting
        time.sleep(0.1)
    gateway.hang_up(placed.provider_id)
    gateway.wait(placed.provider_id, 20)
    # PCMA was offered first; the phone chose PCMU and heard the greeting in it, loud and clear.
    assert line.codec is not None and line.codec.name == "PCMU" and line.audible_out >= 100
    (heard,) = set(sip_phone.dumps.glob("*-dec.wav")) - before
    assert loudest_sample(heard) > 3000
    assert line.audible_in > 10 and line.ended_by == "us" and line.bye_confirmed


def test_sip_settings_are_checked_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_SIP_CODECS", "PCMA,G729")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="CARELOOP_SIP_CODECS: PCMA and/or PCMU"):
        get_settings()
    monkeypatch.setenv("CARELOOP_SIP_CODECS", " pcmu , PCMA ")
    monkeypatch.setenv("CARELOOP_VOICE_GATEWAY", "sip")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.sip_codecs == "PCMU,PCMA"
    # Nothing to dial without a trunk: a clear refusal, and no gateway left half-built.
    with pytest.raises(RuntimeError, match="CARELOOP_SIP_TRUNK_HOST"):
        gateway_from_settings(settings)
    get_settings.cache_clear()


def test_the_dialer_process_places_due_calls_and_hangs_up_when_stopped(
    voice_server: str, db: Session, sip_phone: Phone, gateway: SipGateway, no_quiet_hours: None
) -> None:
    call = sip_call(db)  # queued, due now
    stop = threading.Event()
    runner = threading.Thread(target=run_dialer, args=(stop, 0.2), name="voice-dialer")
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            db.expire_all()
            row = db.get(VoiceCall, call.id)
            assert row is not None
            if row.provider_id in gateway.calls and gateway.calls[row.provider_id].log.audible_out >= 50:
                break
            time.sleep(0.1)
        else:
            pytest.fail(
                f"the dialer did not place the call (state {row.state}, audit {audit_trail(db, call.id)})"
            )
        line = gateway.calls[row.provider_id].log
    finally:
        stop.set()
        runner.join(timeout=30)
    # Stopping the process hung the call up properly (BYE answered), and the dialer's round stored it.
    assert not runner.is_alive() and line.ended_by == "us" and line.bye_confirmed
    db.expire_all()
    row = db.get(VoiceCall, call.id)
    assert row is not None and row.placed_at is not None and row.answered_at is not None
    assert "voice.call_placed" in [action for action, _ in audit_trail(db, call.id)]


def test_sip_calls_with_redis_are_dialled_by_their_own_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_VOICE_GATEWAY", "sip")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    get_settings.cache_clear()
    assert in_own_process(get_settings())
    assert periodic.dial_due_calls() == 0  # the periodic job leaves them to `careloop voice-dialer`
    monkeypatch.setenv("REDIS_URL", "")
    get_settings.cache_clear()
    assert not in_own_process(get_settings())  # the server's own ticker thread lives on: it dials
    get_settings.cache_clear()


def test_a_spoken_answer_crosses_the_trunk_and_is_recognised(
    voice_server: str,
    db: Session,
    sip_phone: Phone,
    gateway: SipGateway,
    synth: EspeakSynthesizer,
    tmp_path: Path,
) -> None:
    """The phone says "four" (espeak-ng, A-law on the line) over the question: pocketsphinx hears it
    through RTP, the transcoding and the Media Stream, and the answer is stored as speech."""
    four = tmp_path / "four.wav"
    pcm = ulaw_to_pcm16(synth.synthesize("four", "en"))
    four.write_bytes(write_wav(silence(300, 8000) + pcm + silence(60_000, 8000), 8000))
    call = sip_call(db)
    assert dial(db, call, gateway) == "placed"
    db.commit()
    assert call.provider_id is not None
    line = gateway.calls[call.provider_id].log
    take_turns(line, [press(sip_phone, BIRTH_KEYS), say(sip_phone, four), press(sip_phone, "#")])
    gateway.wait(call.provider_id, 60)
    row, response = stored(db, call)
    assert response.answers == {"recommend": 4} and response.skipped == ["reason"]
    assert [(t["via"], t["heard"]) for t in row.transcripts] == [("speech", "four")]
    assert row.outcome is Outcome.COMPLETED and line.codec is not None and line.codec.name == "PCMA"
