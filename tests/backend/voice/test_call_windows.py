"""Call windows and caller ids per site, at fixed clocks: the pure rules, then the campaign dialer on both
databases against the local fake of Twilio's Calls API (a call outside its window waits, never drops;
the patient sees the campus's number)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.followup.dispatcher import dispatch_due
from backend.models import AuditEvent, Department, FollowUpPlan, Patient
from backend.voice.call_windows import (
    Defaults,
    SiteRules,
    VoiceSite,
    Window,
    all_sites,
    next_opening,
    parse_window,
    resolve,
)
from backend.voice.dial_due import dial_due_calls
from tests.backend.voice.test_campaign_dialer import NOW, _calls, _campaign, fake  # noqa: F401  (fixture)
from tests.channels.fake_twilio_voice import FakeTwilioVoice
from voice_ai.call_events import CallState

SHANGHAI = "Asia/Shanghai"
WINDOWS = ["09:00-12:00", "14:00-20:00"]


def _rules(
    windows: list[str] = WINDOWS, holidays: list[date] | None = None, zone: str = SHANGHAI
) -> SiteRules:
    return resolve({}, None, Defaults(zone=zone, windows=windows, holidays=holidays or [], caller_id=None))


def _at(hour: int, minute: int = 0, day: int = 20) -> datetime:
    """A Shanghai wall-clock time on 2026-11-<day> (UTC+8, no daylight saving) as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_a_window_is_parsed_and_bad_ones_are_refused_naming_the_text() -> None:
    assert parse_window("09:00-12:00") == Window(time(9), time(12))
    assert parse_window("14:00-24:00").end == time.max
    for bad in ("9-12", "12:00-09:00", "22:00-02:00", "09:00-24:30", "25:00-26:00", ""):
        with pytest.raises(ValueError, match="call window"):
            parse_window(bad)


def test_settings_refuse_overlapping_windows_unknown_zones_and_misspelt_site_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value, why in [
        ("CARELOOP_VOICE_CALL_WINDOWS", '["09:00-12:00", "11:00-13:00"]', "overlap"),
        ("CARELOOP_VOICE_SITES", '{"east": {"timezone": "Mars/Olympus"}}', "time zone"),
        ("CARELOOP_VOICE_SITES", '{"east": {"caller": "+8621"}}', "caller"),
        ("CARELOOP_VOICE_SITES", '{"east": {"windows": ["8-9"]}}', "HH:MM"),
        ("CARELOOP_VOICE_SITES", '{"east": {"caller_id": "021-555"}}', "E.164"),
    ]:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        with pytest.raises(ValidationError, match=why):
            get_settings()
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    assert get_settings().voice_call_windows == []  # and nothing was kept from the refused values


@pytest.mark.parametrize(
    ("local", "opens"),
    [
        (_at(8, 59), _at(9)),  # before the morning window
        (_at(9), None),  # its first minute
        (_at(11, 59), None),
        (_at(12), _at(14)),  # the end is exclusive: lunch waits for the afternoon
        (_at(19, 59), None),
        (_at(20), _at(9, day=21)),  # evening: the next morning
        (_at(23, 30), _at(9, day=21)),
    ],
)
def test_next_opening_in_the_hospitals_zone(local: datetime, opens: datetime | None) -> None:
    assert next_opening(_rules(), local) == opens


def test_holidays_are_skipped_whole_days_and_no_windows_means_any_hour() -> None:
    rules = _rules(holidays=[date(2026, 11, 21), date(2026, 11, 22)])
    assert next_opening(rules, _at(20)) == _at(9, day=23)
    assert next_opening(rules, _at(10, day=21)) == _at(9, day=23)
    anytime = _rules(windows=[], holidays=[date(2026, 11, 21)])
    assert next_opening(anytime, _at(3)) is None
    assert next_opening(anytime, _at(15, day=21)) == _at(0, day=22)


def test_a_window_that_never_opens_is_an_error_not_an_endless_wait() -> None:
    every_day = [date(2026, 11, 20) + timedelta(days=n) for n in range(400)]
    with pytest.raises(ValueError, match="no call window opens"):
        next_opening(_rules(holidays=every_day), _at(10))


def test_daylight_saving_is_followed_in_the_sites_zone() -> None:
    rules = _rules(zone="Europe/London")
    # London: 09:00 is 09:00 UTC in winter and 08:00 UTC in summer
    assert next_opening(rules, datetime(2026, 12, 1, 7, tzinfo=UTC)) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert next_opening(rules, datetime(2026, 7, 1, 7, tzinfo=UTC)) == datetime(2026, 7, 1, 8, tzinfo=UTC)


def test_a_site_names_its_departments_and_takes_the_defaults_it_leaves_out() -> None:
    sites = {
        "east": VoiceSite(departments=["CARD"], caller_id="+862100000001", windows=["10:00-11:00"]),
        "west": VoiceSite(departments=["ORTH"], timezone="Asia/Ho_Chi_Minh"),
    }
    east, west, other = (
        resolve(sites, code, Defaults(SHANGHAI, WINDOWS, [date(2026, 12, 25)], "+15005550006"))
        for code in ("CARD", "ORTH", "ENT")
    )
    assert (east.name, east.caller_id, [str(w) for w in east.windows]) == (
        "east",
        "+862100000001",
        ["10:00-11:00"],
    )
    assert east.holidays == {date(2026, 12, 25)}
    assert (west.caller_id, west.zone.key, [str(w) for w in west.windows]) == (
        "+15005550006",
        "Asia/Ho_Chi_Minh",
        WINDOWS,
    )
    assert (other.name, other.zone.key, other.caller_id) == ("", SHANGHAI, "+15005550006")


# --- the dialer, on both databases ---------------------------------------------------------------


def _sites(monkeypatch: pytest.MonkeyPatch, code: str, **site: object) -> None:
    monkeypatch.setenv("CARELOOP_VOICE_CALL_WINDOWS", json.dumps(WINDOWS))
    monkeypatch.setenv("CARELOOP_VOICE_SITES", json.dumps({"east": {"departments": [code], **site}}))
    get_settings.cache_clear()


def _department_of(db: Session, plan: FollowUpPlan) -> Department:
    dept = db.get(Department, plan.department_ids[0])
    assert dept is not None
    return dept


def test_outside_the_window_the_call_waits_for_it_and_is_then_placed_from_the_campus_number(
    fake: FakeTwilioVoice,  # noqa: F811
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (person,), plan = _campaign(db)
    _sites(monkeypatch, _department_of(db, plan).code, caller_id="+862100000001")
    assert dispatch_due(NOW) == {"sent:voice": 1}
    lunch = _at(12, 30)
    assert dial_due_calls(lunch) == {"deferred:call_window": 1}
    (call,) = _calls(db)
    # waits (not dropped, not failed, not redialled) until the afternoon window opens
    assert call.state is CallState.QUEUED and call.dial_after == _at(14) and fake.requests == []
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "voice.call_deferred")).one()
    assert audit.detail["reason"] == "call_window"
    assert dial_due_calls(_at(13, 59)) == {"none_due": 1}
    assert dial_due_calls(_at(14))["placed"] == 1
    assert [(r.params["To"], r.params["From"]) for r in fake.calls] == [(person.phone, "+862100000001")]


def test_a_department_no_site_names_uses_the_hospital_number_and_holidays_hold_calls(
    fake: FakeTwilioVoice,  # noqa: F811
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _campaign(db)
    _sites(monkeypatch, "SOMEWHERE-ELSE", caller_id="+862100000001")
    monkeypatch.setenv("CARELOOP_VOICE_HOLIDAYS", json.dumps(["2026-11-20"]))
    get_settings.cache_clear()
    assert dispatch_due(NOW) == {"sent:voice": 1}
    assert dial_due_calls(_at(11, 30)) == {"deferred:call_window": 1}  # a holiday: inside the hours, no call
    (call,) = _calls(db)
    assert call.dial_after == _at(9, day=21) and call.state is CallState.QUEUED
    assert dial_due_calls(_at(9, day=21))["placed"] == 1
    assert fake.calls[-1].params["From"] == "+15005550006"  # CARELOOP_TWILIO_VOICE_FROM


def test_the_window_is_in_the_sites_zone_not_the_patients(
    fake: FakeTwilioVoice,  # noqa: F811
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (person,), plan = _campaign(db)
    _sites(monkeypatch, _department_of(db, plan).code, timezone="Asia/Ho_Chi_Minh", windows=["13:00-20:00"])
    db.get(Patient, person.id).timezone = "Asia/Ho_Chi_Minh"  # type: ignore[union-attr]
    db.commit()
    assert dispatch_due(NOW) == {"sent:voice": 1}
    # 13:30 in Shanghai (inside 13:00-20:00 there) is 12:30 in Ho Chi Minh City: not yet open
    assert dial_due_calls(_at(13, 30)) == {"deferred:call_window": 1}
    (call,) = _calls(db)
    assert call.dial_after == _at(14)  # 13:00 in Ho Chi Minh City


def test_the_status_page_lists_the_hospital_rules_first_then_each_site() -> None:
    sites = {"west": VoiceSite(departments=["ORTH", "ENT"], caller_id="+84280000001"), "east": VoiceSite()}
    rows = all_sites(sites, Defaults(SHANGHAI, WINDOWS, [], "+15005550006"))
    assert [(r.name, codes, r.caller_id) for r, codes in rows] == [
        ("", [], "+15005550006"),
        ("east", [], "+15005550006"),
        ("west", ["ORTH", "ENT"], "+84280000001"),
    ]


def test_the_settings_pages_show_sites_holidays_and_model_paths_as_the_json_one_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The admin's effective-settings page and docs/configuration.md print values with show_value: dates,
    paths and site models used to fail json.dumps there."""
    from backend.app.config_reference import show_value

    site = {"east": {"departments": ["CARD"], "holidays": ["2027-01-01"], "caller_id": "+862100000001"}}
    monkeypatch.setenv("CARELOOP_VOICE_SITES", json.dumps(site))
    monkeypatch.setenv("CARELOOP_VOICE_HOLIDAYS", '["2027-01-01"]')
    monkeypatch.setenv("CARELOOP_VOICE_VOSK_MODELS", '{"vi": "/srv/models/vn"}')
    get_settings.cache_clear()
    settings = get_settings()
    assert json.loads(show_value(settings.voice_sites)) == {"east": {**site["east"]}}
    assert show_value(settings.voice_holidays) == '["2027-01-01"]'
    assert show_value(settings.voice_vosk_models) == '{"vi": "/srv/models/vn"}'
    get_settings.cache_clear()


def test_dial_itself_keeps_the_window_for_calls_placed_outside_the_periodic_job(
    fake: FakeTwilioVoice,  # noqa: F811
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backend.voice.dialer import dial, gateway_from_settings

    (person,), plan = _campaign(db)
    _sites(monkeypatch, _department_of(db, plan).code, caller_id="+862100000001")
    assert dispatch_due(NOW) == {"sent:voice": 1}
    (call,) = _calls(db)
    gateway = gateway_from_settings(get_settings())
    assert dial(db, call, gateway, now=_at(21)) == "deferred:call_window"
    assert call.state is CallState.QUEUED and call.dial_after == _at(9, day=21) and fake.requests == []
    assert dial(db, call, gateway, now=_at(9, day=21)) == "placed"
    assert fake.calls[-1].params["From"] == "+862100000001" and fake.calls[-1].params["To"] == person.phone
