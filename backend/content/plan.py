"""The follow-up plan kind of the studio: a body is a plan's settings (who, what, when, how, how many).

Validation is pure and speaks the editor's words (each problem names the form field). Publishing
materialises the body into its `follow_up_plans` row inside the publishing transaction; the row keeps
the revision number, which the planner writes on every task it creates. Every change of a plan decides
who is contacted about their health, so every revision needs a second person with the approval grant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeGuard

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.kinds import Change, Problem, register
from backend.models import Anchor, ContentItem, EncounterKind, FollowUpPlan, QuestionnaireVersion
from backend.models.patients import EXCLUSION_FLAGS
from backend.services import audit
from bots.domain import Channel

KIND = "plans"
MAX_OFFSET = 3650
# contacts one encounter may get: a monthly follow-up for ten years, or every other day for eight months
MAX_CONTACTS = 120
MAX_AGE = 150
LISTS = ("encounter_kinds", "department_ids", "ward_ids", "diagnosis_prefixes", "procedure_codes")
ALL_LISTS = (*LISTS, "offsets_days", "channels", "excluded_flags")
# The settings a body carries, each copied onto the plan row when published.
FIELDS = (
    "name",
    "questionnaire_id",
    *LISTS,
    "age_min",
    "age_max",
    "min_visits",
    "anchor",
    "offsets_days",
    "send_hour",
    "channels",
    "sample_ratio",
    "daily_limit",
    "resend_after_hours",
    "attempts_per_channel",
    "excluded_flags",
)


def skeleton(name: str) -> dict[str, Any]:
    """A new plan's first draft: discharges, days 3 and 30 at 10:00, WeChat then SMS, every exclusion."""
    return {
        "name": name,
        "questionnaire_id": "",
        "encounter_kinds": [EncounterKind.DISCHARGE.value],
        "department_ids": [],
        "ward_ids": [],
        "diagnosis_prefixes": [],
        "procedure_codes": [],
        "age_min": None,
        "age_max": None,
        "min_visits": None,
        "anchor": Anchor.DISCHARGE.value,
        "offsets_days": [3, 30],
        "send_hour": 10,
        "channels": [Channel.WECHAT.value, Channel.SMS.value],
        "sample_ratio": 1.0,
        "daily_limit": None,
        "resend_after_hours": 48,
        "attempts_per_channel": 2,
        "excluded_flags": list(EXCLUSION_FLAGS),
    }


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_range(body: Mapping[str, Any], name: str, low: int, high: int, *, optional: bool) -> list[Problem]:
    value = body.get(name)
    if value is None and optional:
        return []
    if not _whole(value) or not low <= value <= high:
        return [Problem(name, "out_of_range", f"{low}-{high}")]
    return []


def validate(body: Mapping[str, Any]) -> list[Problem]:
    """Every problem of a plan body, each under the name of the form field that holds it."""
    problems: list[Problem] = []
    unknown = sorted(set(body) - set(FIELDS))
    problems += [Problem(name, "unknown_field") for name in unknown]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append(Problem("name", "required"))
    qid = body.get("questionnaire_id")
    if not isinstance(qid, str) or not qid.strip():
        problems.append(Problem("questionnaire_id", "required"))
    for field in ALL_LISTS:
        if not isinstance(body.get(field, []), list):
            problems.append(Problem(field, "not_a_list"))
    if problems:
        return problems
    body = {**{f: [] for f in ALL_LISTS}, **body}
    for field in ALL_LISTS:
        body[field] = body[field] or []
    kinds = {k.value for k in EncounterKind}
    problems += [
        Problem("encounter_kinds", "unknown_value", str(k)) for k in body["encounter_kinds"] if k not in kinds
    ]
    for field in ("department_ids", "ward_ids"):
        problems += [Problem(field, "unknown_value", str(v)) for v in body[field] if not _whole(v) or v < 1]
    for prefix in body["diagnosis_prefixes"]:
        if not isinstance(prefix, str) or not prefix.strip() or len(prefix) > 16:
            problems.append(Problem("diagnosis_prefixes", "unknown_value", str(prefix)))
    for code in body["procedure_codes"]:
        if not isinstance(code, str) or not code.strip() or len(code) > 16:
            problems.append(Problem("procedure_codes", "unknown_value", str(code)))
    problems += _in_range(body, "age_min", 0, MAX_AGE, optional=True)
    problems += _in_range(body, "age_max", 0, MAX_AGE, optional=True)
    if _whole(body.get("age_min")) and _whole(body.get("age_max")) and body["age_min"] > body["age_max"]:
        problems.append(Problem("age_max", "below_minimum"))
    problems += _in_range(body, "min_visits", 1, 1000, optional=True)
    if body.get("anchor") not in {a.value for a in Anchor}:
        problems.append(Problem("anchor", "unknown_value", str(body.get("anchor"))))
    offsets = body["offsets_days"]
    if not offsets:
        problems.append(Problem("offsets_days", "required"))
    elif any(not _whole(o) or not 0 <= o <= MAX_OFFSET for o in offsets):
        problems.append(Problem("offsets_days", "out_of_range", f"0-{MAX_OFFSET}"))
    elif len(set(offsets)) != len(offsets):
        problems.append(Problem("offsets_days", "repeated"))
    elif len(offsets) > MAX_CONTACTS:
        problems.append(Problem("offsets_days", "too_many", str(MAX_CONTACTS)))
    problems += _in_range(body, "send_hour", 0, 23, optional=False)
    channels = body["channels"]
    known = {c.value for c in Channel}
    if not channels:
        problems.append(Problem("channels", "required"))
    problems += [Problem("channels", "unknown_value", str(c)) for c in channels if c not in known]
    if len(set(channels)) != len(channels):
        problems.append(Problem("channels", "repeated"))
    ratio = body.get("sample_ratio")
    if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 < ratio <= 1:
        problems.append(Problem("sample_ratio", "out_of_range", "0-100 %"))
    problems += _in_range(body, "daily_limit", 1, 1_000_000, optional=True)
    problems += _in_range(body, "resend_after_hours", 1, 24 * 30, optional=False)
    problems += _in_range(body, "attempts_per_channel", 1, 10, optional=False)
    problems += [
        Problem("excluded_flags", "unknown_value", str(f))
        for f in body["excluded_flags"]
        if f not in EXCLUSION_FLAGS
    ]
    return problems


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    def shown(value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    return [
        Change(name, None, shown(before.get(name)), shown(after.get(name)))
        for name in FIELDS
        if before.get(name) != after.get(name)
    ]


def questionnaire_problems(session: Session, body: Mapping[str, Any]) -> list[Problem]:
    """The plan's questionnaire must be published and not withdrawn: a plan never sends what a patient
    could not be given. (The studio's own retired state counts, for a questionnaire edited there.)"""
    qid = body.get("questionnaire_id")
    if not isinstance(qid, str) or not qid:
        return []
    versions = session.scalar(sa.select(sa.func.count()).where(QuestionnaireVersion.questionnaire_id == qid))
    item = session.scalar(
        sa.select(ContentItem).where(ContentItem.kind == "questionnaires", ContentItem.key == qid)
    )
    withdrawn = item is not None and item.published_number is None and versions
    if not versions or withdrawn:
        return [Problem("questionnaire_id", "questionnaire_retired", qid)]
    return []


def plan_from_body(body: Mapping[str, Any], plan: FollowUpPlan | None = None) -> FollowUpPlan:
    """`plan` (or a new, unsaved row) holding the body's settings: what publishing stores, and what the
    editor's preview reads before anything is saved."""
    plan = plan if plan is not None else FollowUpPlan(active=True)
    for name in FIELDS:
        value = body.get(name)
        if name == "anchor":
            value = Anchor(value) if value in {a.value for a in Anchor} else Anchor.DISCHARGE
        elif name in ALL_LISTS:
            value = list(value or [])
        setattr(plan, name, value)
    return plan


class Plans:
    """The ContentKind of follow-up plans."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        offsets = ", ".join(str(o) for o in body.get("offsets_days") or [])
        return {"questionnaire_id": str(body.get("questionnaire_id") or ""), "offsets_days": offsets}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return True


def _materialise(session: Session, key: str, body: Mapping[str, Any], staff_id: int | None) -> None:
    from backend.content.revisions import ContentInvalid

    if problems := questionnaire_problems(session, body):
        raise ContentInvalid(problems)
    item = session.scalar(sa.select(ContentItem).where(ContentItem.kind == KIND, ContentItem.key == key))
    plan = session.scalar(sa.select(FollowUpPlan).where(FollowUpPlan.content_key == key))
    created = plan is None
    plan = plan_from_body(body, plan)
    plan.content_key = key
    plan.revision = item.published_number if item is not None else None
    if created:
        session.add(plan)
    session.flush()
    audit.record(
        session,
        "plan.materialised",
        staff_id=staff_id,
        subject=("follow_up_plan", plan.id),
        key=key,
        revision=plan.revision,
    )


register(Plans(), materialise=_materialise, retirable=False)
