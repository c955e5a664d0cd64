"""When and from which number a call may go out: the call window of the site (campus) serving the call's
department, in the site's own time zone, with its holidays, and the caller id the patient sees.

A site is set in `CARELOOP_VOICE_SITES` (JSON: name -> departments by code, zone, windows, holidays,
caller id) and/or as a campus in the admin console (the `sites` table, name = its code): a value the
campus row holds wins over the setting's (`merge_sites`). Whatever a site leaves out, and every department
no site names, takes the hospital-wide `CARELOOP_VOICE_CALL_WINDOWS`, `CARELOOP_VOICE_HOLIDAYS`,
`CARELOOP_DEFAULT_TIMEZONE` and `CARELOOP_TWILIO_VOICE_FROM`. Pure: the caller passes the clock, so the
rules are tested at any hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
HORIZON_DAYS = 400  # a window that never opens within this long is a configuration error
E164 = re.compile(r"\+[1-9]\d{6,14}")  # what the gateway accepts as a caller id
DEFAULT_SITE = ""  # the hospital-wide rules, for departments no site names


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """Local wall-clock times; `end` is exclusive, and 24:00 (time.max) is the end of the day."""

    start: time
    end: time

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


def parse_window(text: str) -> Window:
    """ "09:00-12:00" -> Window; ValueError naming the text for anything else, or an empty window."""
    found = _WINDOW.match(text.strip())
    if not found:
        raise ValueError(f"call window {text!r} is not HH:MM-HH:MM (e.g. 09:00-12:00)")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start = time(h1, m1)
    if h2 == 24 and m2 != 0:
        raise ValueError(f"call window {text!r}: the latest end is 24:00")
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"call window {text!r} ends before it starts (a window cannot span midnight)")
    return Window(start, end)


def check_windows(texts: list[str]) -> list[str]:
    """Settings validator: every window parses, and no two overlap (an overlap is a typing mistake)."""
    windows = sorted(parse_window(t) for t in texts)
    for earlier, later in pairwise(windows):
        if later.start < earlier.end:
            raise ValueError(f"call windows {earlier} and {later} overlap")
    return texts


def check_zone(zone: str | None) -> str | None:
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{zone!r} is not an IANA time zone (e.g. Asia/Shanghai)") from exc
    return zone


class VoiceSite(BaseModel):
    """One campus as `CARELOOP_VOICE_SITES` sets it; a field left out takes the hospital-wide value."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must not silently drop a rule

    departments: list[str] = Field(default_factory=list, description="department codes this site serves")
    timezone: str | None = None
    windows: list[str] | None = None
    holidays: list[date] | None = None
    caller_id: str | None = None

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_windows(value)

    @field_validator("caller_id")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.fullmatch(value):
            raise ValueError(f"caller id {value!r} is not an E.164 number (+ and 7-15 digits)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return check_zone(value)


@dataclass(frozen=True, slots=True)
class SiteRules:
    """What one site's calls obey, resolved against the hospital-wide settings."""

    name: str  # DEFAULT_SITE for the hospital-wide rules
    zone: ZoneInfo
    windows: tuple[Window, ...]  # empty: any hour the outbox's quiet hours allow
    holidays: frozenset[date]
    caller_id: str | None  # None: the gateway's default


@dataclass(frozen=True, slots=True)
class Defaults:
    """The hospital-wide values a site falls back on."""

    zone: str
    windows: list[str]
    holidays: list[date]
    caller_id: str | None


@dataclass(frozen=True, slots=True)
class CampusVoice:
    """What a campus row in the database says about its calls; None: not set there."""

    code: str
    timezone: str
    departments: list[str] | None
    windows: list[str] | None
    caller_id: str | None
    holidays: list[date] | None  # the campus calendar's holidays; None when it lists none


def merge_sites(configured: dict[str, VoiceSite], campuses: list[CampusVoice]) -> dict[str, VoiceSite]:
    """The sites calls obey: each campus row takes part when the setting names its code or it names
    departments itself; its values win field by field, the setting's fill what it leaves unset. The time
    zone is the campus's (a campus always has one); holidays are its calendar's when it lists any."""
    merged = dict(configured)
    for campus in campuses:
        base = configured.get(campus.code)
        if base is None and not campus.departments:
            continue
        base = base or VoiceSite()
        merged[campus.code] = VoiceSite(
            departments=campus.departments if campus.departments is not None else base.departments,
            timezone=campus.timezone,
            windows=campus.windows if campus.windows is not None else base.windows,
            holidays=campus.holidays if campus.holidays else base.holidays,
            caller_id=campus.caller_id or base.caller_id,
        )
    return merged


def site_rules(name: str, site: VoiceSite, defaults: Defaults) -> SiteRules:
    return SiteRules(
        name=name,
        zone=ZoneInfo(site.timezone or defaults.zone),
        windows=_parsed(site.windows if site.windows is not None else defaults.windows),
        holidays=frozenset(site.holidays if site.holidays is not None else defaults.holidays),
        caller_id=site.caller_id or defaults.caller_id,
    )


def resolve(sites: dict[str, VoiceSite], department_code: str | None, defaults: Defaults) -> SiteRules:
    """The rules for a call of this department: the first site (by name) naming it, else the defaults."""
    for name in sorted(sites):
        if department_code is not None and department_code in sites[name].departments:
            return site_rules(name, sites[name], defaults)
    return site_rules(DEFAULT_SITE, VoiceSite(), defaults)


def all_sites(sites: dict[str, VoiceSite], defaults: Defaults) -> list[tuple[SiteRules, list[str]]]:
    """Every site's rules with its department codes, the hospital-wide rules first (with no codes: they
    serve every department no site names), for the voice status page."""
    rows = [(site_rules(DEFAULT_SITE, VoiceSite(), defaults), list[str]())]
    rows += [
        (site_rules(name, sites[name], defaults), list(sites[name].departments)) for name in sorted(sites)
    ]
    return rows


def _parsed(texts: list[str]) -> tuple[Window, ...]:
    return tuple(sorted(parse_window(t) for t in texts))


def next_opening(rules: SiteRules, now: datetime) -> datetime | None:
    """None when a call may go now; else the next moment the site's window opens (in `now`'s zone).

    Holidays are whole local days without calls. Raises ValueError when no window opens within
    HORIZON_DAYS (every day a holiday): deferring forever would hide the mistake."""
    local = now.astimezone(rules.zone)
    if not rules.windows:
        if local.date() not in rules.holidays:
            return None
        windows: tuple[Window, ...] = (Window(time(0), time.max),)
    else:
        windows = rules.windows
    for offset in range(HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        if day in rules.holidays:
            continue
        for window in windows:
            if offset == 0 and window.start <= local.time() < window.end:
                return None
            opens = datetime.combine(day, window.start, tzinfo=rules.zone)
            if opens > local:
                return opens.astimezone(now.tzinfo)
    raise ValueError(f"site {rules.name or 'default'}: no call window opens within {HORIZON_DAYS} days")
