"""The plans list of the editor: every plan row and every plan in the studio, filtered, and as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.plan import KIND
from backend.models import ContentItem, ContentRevision, FollowUpPlan
from backend.services.spreadsheet import formula_safe

STATES = ("active", "paused", "unpublished")


@dataclass(frozen=True)
class PlanFilters:
    text: str = ""
    state: str = ""

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> PlanFilters:
        state = values.get("state", "")
        return cls(text=values.get("q", "").strip()[:100], state=state if state in STATES else "")


@dataclass(frozen=True)
class PlanRow:
    key: str | None  # the studio item's key; None: a plan from the seeder or files, not editable here
    name: str
    questionnaire_id: str
    state: str  # one of STATES
    revision: int | None  # published revision
    latest: int | None  # newest revision (a draft, perhaps)
    plan_id: int | None


def plan_rows(session: Session, filters: PlanFilters) -> list[PlanRow]:
    plans = {p.content_key: p for p in session.scalars(sa.select(FollowUpPlan).order_by(FollowUpPlan.id))}
    latest = dict(
        session.execute(
            sa.select(ContentItem.key, sa.func.max(ContentRevision.number))
            .join(ContentRevision, ContentRevision.item_id == ContentItem.id)
            .where(ContentItem.kind == KIND)
            .group_by(ContentItem.key)
        ).all()
    )
    rows = []
    for item in session.scalars(
        sa.select(ContentItem).where(ContentItem.kind == KIND).order_by(ContentItem.key)
    ):
        plan = plans.pop(item.key, None)
        rows.append(_row(item.key, plan, latest.get(item.key), item.key))
    rows += [_row(None, plan, None, "") for plan in plans.values()]
    text = filters.text.casefold()
    return [
        r
        for r in rows
        if (not filters.state or r.state == filters.state)
        and (not text or text in r.name.casefold() or text in (r.key or "") or text in r.questionnaire_id)
    ]


def _row(key: str | None, plan: FollowUpPlan | None, latest: int | None, fallback: str) -> PlanRow:
    if plan is None:
        return PlanRow(key, fallback, "", "unpublished", None, latest, None)
    return PlanRow(
        key,
        plan.name,
        plan.questionnaire_id,
        "active" if plan.active else "paused",
        plan.revision,
        latest,
        plan.id,
    )


def rows_csv(rows: list[PlanRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key", "name", "questionnaire", "state", "published_revision", "latest_revision"])
    for r in rows:
        cells = [r.key or "", r.name, r.questionnaire_id, r.state, r.revision or "", r.latest or ""]
        writer.writerow([formula_safe(c) for c in cells])
    return out.getvalue()
