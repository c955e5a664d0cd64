"""Emergency guidance passes every gate but an unreachable address; nothing else rides on it."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.models import OutboxItem, OutboxKind, Patient
from backend.outbox.gates import Action, Facts, judge, judge_unlinked
from bots.domain import Channel, ConsentPurpose

NIGHT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: quiet time


def _patient(**flags: object) -> Patient:
    person = Patient(
        id=7, mrn="M1", name="P", language="en", timezone="Asia/Shanghai", phone="+8613800138000"
    )
    defaults = {"deceased": False, "dispute": False, "do_not_disturb": False, "invalid_contact": False}
    for name, value in {**defaults, **flags}.items():
        setattr(person, name, value)
    return person


def _item(kind: OutboxKind, channel: Channel = Channel.SMS) -> OutboxItem:
    return OutboxItem(
        id=1, message_id=1, patient_id=7, channel=channel, kind=kind, purpose=ConsentPurpose.CARE
    )


def _refused() -> Facts:
    facts = Facts()
    facts.consent[(7, ConsentPurpose.CARE, Channel.SMS)] = False
    facts.sent[(7, Channel.SMS)].extend([NIGHT] * 10)  # far past the daily cap
    return facts


def test_emergency_guidance_goes_without_consent_in_quiet_hours_past_the_cap_and_excluded() -> None:
    person = _patient(do_not_disturb=True, dispute=True, deceased=True)
    assert judge(_item(OutboxKind.EMERGENCY), person, _refused(), NIGHT).action is Action.SEND


def test_the_same_patient_gets_no_reply_and_no_outreach() -> None:
    person = _patient(do_not_disturb=True)
    assert judge(_item(OutboxKind.REPLY), person, _refused(), NIGHT).reason == "no_consent"
    assert judge(_item(OutboxKind.OUTREACH), person, _refused(), NIGHT).action is Action.SUPPRESS


def test_only_an_unreachable_address_stops_emergency_guidance() -> None:
    verdict = judge(_item(OutboxKind.EMERGENCY), _patient(invalid_contact=True), _refused(), NIGHT)
    assert (verdict.action, verdict.reason) == (Action.SUPPRESS, "unreachable")
    no_whatsapp = judge(_item(OutboxKind.EMERGENCY, Channel.WHATSAPP), _patient(), _refused(), NIGHT)
    assert (no_whatsapp.action, no_whatsapp.reason) == (Action.SUPPRESS, "unreachable")


def test_an_unlinked_follower_gets_emergency_guidance_inside_wechats_window() -> None:
    item = OutboxItem(id=1, message_id=1, patient_id=None, channel=Channel.WECHAT, kind=OutboxKind.EMERGENCY)
    assert judge_unlinked(item, window_open=True).action is Action.SEND
    assert judge_unlinked(item, window_open=False).reason == "window_closed"
