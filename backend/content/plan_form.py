"""The plan editor's form as a plan body, and back: pure, so what was typed survives a refusal.

Lists come as repeated fields (checkboxes, the channel order's selects) or as comma-separated text
(diagnosis prefixes, procedures, offsets). A value that is not a number stays in the body as typed, so
`plan.validate` names its field and the editor shows it again rather than losing it. Offsets may be
written as a repeating schedule, `from-to/every` (`30-360/30`: day 30, 60, ... 360), which the body holds
as the days it stands for: the planner, the preview and the dispatcher read one list of days.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from backend.content.plan import FIELDS, MAX_OFFSET

CHANNEL_SLOTS = 5  # the channel order: one select per position
_SEPARATORS = re.compile(r"[,，;；\s]+")  # a Chinese comma typed on a Chinese keyboard counts too


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.split(text.strip()) if w]


_REPEAT = re.compile(r"(\d{1,5})-(\d{1,5})/(\d{1,5})")


def offsets(text: str) -> list[Any]:
    """The days of the offsets field: numbers, and `from-to/every` for every `every` days from day `from`
    to day `to` (both included when the steps reach it). A repeat that cannot be read (zero steps, an end
    before its start or beyond MAX_OFFSET) stays as typed, for validation to name the field."""
    days: list[Any] = []
    for word in _words(text):
        repeat = _REPEAT.fullmatch(word)
        if repeat is None:
            days.append(_number(word))
            continue
        start, end, every = (int(g) for g in repeat.groups())
        if every < 1 or start > end or end > MAX_OFFSET:
            days.append(word)
        else:
            days.extend(range(start, end + 1, every))
    return days


def _number(text: str, kind: Callable[[str], Any] = int) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        return text  # kept as typed: validation names the field


def body_from_form(form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The body a posted editor form describes; `form` maps each field name to its values."""

    def one(name: str) -> str:
        values = form.get(name) or [""]
        return values[0]

    def many(name: str) -> list[str]:
        return [v for v in form.get(name) or [] if v]

    channels = [one(f"channel_{slot}") for slot in range(1, CHANNEL_SLOTS + 1)]
    body: dict[str, Any] = {
        "name": one("name").strip(),
        "questionnaire_id": one("questionnaire_id").strip(),
        "encounter_kinds": many("encounter_kinds"),
        "department_ids": [_number(v) for v in many("department_ids")],
        "ward_ids": [_number(v) for v in many("ward_ids")],
        "diagnosis_prefixes": [w.upper() for w in _words(one("diagnosis_prefixes"))],
        "procedure_codes": _words(one("procedure_codes")),
        "age_min": _number(one("age_min")),
        "age_max": _number(one("age_max")),
        "min_visits": _number(one("min_visits")),
        "anchor": one("anchor"),
        "offsets_days": offsets(one("offsets_days")),
        "send_hour": _number(one("send_hour")),
        "channels": [c for c in channels if c],
        "sample_ratio": _ratio(one("sample_percent")),
        "daily_limit": _number(one("daily_limit")),
        "resend_after_hours": _number(one("resend_after_hours")),
        "attempts_per_channel": _number(one("attempts_per_channel")),
        "excluded_flags": many("excluded_flags"),
    }
    return body


def _ratio(percent: str) -> Any:
    """The editor asks for a percentage (people think "half"); the body keeps the planner's ratio."""
    value = _number(percent, float)
    return round(value / 100, 6) if isinstance(value, float) else value


def form_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the editor's inputs show for a body (the inverse of `body_from_form` for valid bodies)."""

    def joined(values: Any) -> str:
        return ", ".join(str(v) for v in values or [])

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    ratio = body.get("sample_ratio")
    percent = ratio * 100 if isinstance(ratio, int | float) and not isinstance(ratio, bool) else ratio
    channels = list(body.get("channels") or [])
    return {
        **{name: body.get(name) for name in FIELDS},
        "diagnosis_prefixes": joined(body.get("diagnosis_prefixes")),
        "procedure_codes": joined(body.get("procedure_codes")),
        "offsets_days": joined(body.get("offsets_days")),
        "age_min": text(body.get("age_min")),
        "age_max": text(body.get("age_max")),
        "min_visits": text(body.get("min_visits")),
        "send_hour": text(body.get("send_hour")),
        "daily_limit": text(body.get("daily_limit")),
        "resend_after_hours": text(body.get("resend_after_hours")),
        "attempts_per_channel": text(body.get("attempts_per_channel")),
        "sample_percent": f"{percent:g}" if isinstance(percent, float | int) else text(percent),
        "channel_slots": channels + [""] * (CHANNEL_SLOTS - len(channels)),
        "department_ids": [str(v) for v in body.get("department_ids") or []],
        "ward_ids": [str(v) for v in body.get("ward_ids") or []],
    }
