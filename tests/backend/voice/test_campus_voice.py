"""Campus rows of the admin console over CARELOOP_VOICE_SITES: a value the row holds wins, the setting
fills what the row leaves unset, a row that neither the setting names nor names departments takes no
part, and the campus calendar's holidays become days without calls."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from backend.admin import sites as admin_sites
from backend.app.settings import get_settings
from backend.models.booking import CalendarDayKind
from backend.services.working_calendar import CalendarDay
from backend.voice.call_windows import CampusVoice, VoiceSite, merge_sites, next_opening, resolve
from backend.voice.dialer import effective_sites, site_defaults
from tests import factories
from tests.backend.services import booking_data

CONFIGURED = {
    "east": VoiceSite(
        departments=["CARD"], timezone="Asia/Shanghai", windows=["09:00-12:00"], caller_id="+862100000001"
    ),
    "north": VoiceSite(departments=["ORTH"]),
}


def _campus(code: str, **values: object) -> CampusVoice:
    base: dict[str, object] = {
        "code": code,
        "timezone": "Asia/Ho_Chi_Minh",
        "departments": None,
        "windows": None,
        "caller_id": None,
        "holidays": None,
    }
    return CampusVoice(**{**base, **values})  # type: ignore[arg-type]


def test_a_campus_row_wins_field_by_field() -> None:
    merged = merge_sites(CONFIGURED, [_campus("east", caller_id="+842800000009")])
    east = merged["east"]
    assert east.caller_id == "+842800000009"  # the row's
    assert east.windows == ["09:00-12:00"] and east.departments == ["CARD"]  # the setting's
    assert east.timezone == "Asia/Ho_Chi_Minh"  # a campus always has its zone
    assert merged["north"] == CONFIGURED["north"]  # untouched


def test_a_campus_takes_part_when_named_or_naming_departments() -> None:
    merged = merge_sites(
        CONFIGURED,
        [
            _campus("west"),  # neither: no part
            _campus("south", departments=["NEURO"], windows=["08:00-11:00"], holidays=[date(2027, 2, 10)]),
        ],
    )
    assert set(merged) == {"east", "north", "south"}
    assert merged["south"].windows == ["08:00-11:00"] and merged["south"].holidays == [date(2027, 2, 10)]
    assert merge_sites({}, []) == {}


def test_the_campus_rows_reach_the_call_rules(db: Session) -> None:
    root = factories.staff(db, username="root")
    site = booking_data.site(db, timezone="Asia/Ho_Chi_Minh")
    site.voice_departments = ["CARD"]
    site.voice_windows = ["08:00-10:00"]
    site.voice_caller_id = "+842800000009"
    admin_sites.do_set_calendar_day(
        db,
        site,
        CalendarDay(date(2027, 2, 10), CalendarDayKind.HOLIDAY),
        by=root.id,
        now=datetime(2027, 1, 1, tzinfo=UTC),
    )
    settings = get_settings()
    sites = effective_sites(db, settings)
    rules = resolve(sites, "CARD", site_defaults(settings))
    assert rules.name == site.code and rules.caller_id == "+842800000009"
    # 10 Feb is the campus's holiday: a call at 08:30 local waits for 08:00 on the 11th
    opens = next_opening(rules, datetime(2027, 2, 10, 1, 30, tzinfo=UTC))
    assert opens == datetime(2027, 2, 11, 1, 0, tzinfo=UTC)
    site.active = False
    assert site.code not in effective_sites(db, settings)
