"""Reading feedback cases: the configured categories, department scope, the list with filters, statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.app import yaml_files
from backend.models import (
    CaseDepartment,
    CaseKind,
    CaseProgress,
    CaseSource,
    FeedbackCase,
    Patient,
    Satisfaction,
    StaffUser,
    Task,
)
from backend.services.message_log import (
    InvalidFilter,
    Period,
    parse_choice,
    parse_id,
    parse_period,
    text_value,
)
from backend.services.patients import department_ids
from bots.domain import FALLBACK_LANGUAGE

PAGE_SIZE = 100


@dataclass(frozen=True)
class Category:
    code: str
    kinds: tuple[CaseKind, ...]
    label: dict[str, str]

    def name(self, lang: str) -> str:
        return self.label.get(lang) or self.label.get(FALLBACK_LANGUAGE) or self.code


@lru_cache(maxsize=2)
def categories(content_dir: Path) -> tuple[Category, ...]:
    """content/feedback_categories.yaml, in its order."""
    data = yaml_files.load((content_dir / "feedback_categories.yaml").read_text(encoding="utf-8")) or {}
    return tuple(
        Category(str(c["code"]), tuple(CaseKind(k) for k in c.get("kinds", list(CaseKind))), dict(c["label"]))
        for c in data.get("categories", [])
    )


def category_names(content_dir: Path, lang: str) -> dict[str, str]:
    return {c.code: c.name(lang) for c in categories(content_dir)}


# --- scope -----------------------------------------------------------------------------------------


def _scope(user: StaffUser) -> list[ColumnElement[bool]]:
    """A case is within a user's departments if it leads or collaborates on it; no limit for the service
    centre, managers and admins (the same rule as the inbox and patient records)."""
    allowed = department_ids(user)
    if allowed is None:
        return []
    collaborating = sa.select(CaseDepartment.case_id).where(
        CaseDepartment.case_id == FeedbackCase.id, CaseDepartment.department_id.in_(allowed)
    )
    return [sa.or_(FeedbackCase.department_id.in_(allowed), sa.exists(collaborating))]


def case_for(session: Session, *, user: StaffUser, case_id: int) -> FeedbackCase | None:
    found: FeedbackCase | None = session.scalar(
        sa.select(FeedbackCase).where(FeedbackCase.id == case_id, *_scope(user))
    )
    return found


def may_see(session: Session, user: StaffUser, case: FeedbackCase) -> bool:
    return case_for(session, user=user, case_id=case.id) is not None


def patient_cases(session: Session, *, user: StaffUser, patient_id: int) -> list[FeedbackCase]:
    """A patient's cases for the patient page's section, newest first, within the viewer's scope. An
    anonymous case is left out unless the viewer sees every department: the department it is about
    should not learn who complained from the patient's record."""
    query = sa.select(FeedbackCase).where(FeedbackCase.patient_id == patient_id, *_scope(user))
    if department_ids(user) is not None:
        query = query.where(sa.not_(FeedbackCase.anonymous))
    return list(session.scalars(query.order_by(FeedbackCase.created_at.desc(), FeedbackCase.id.desc())))


def cases_to_rate(session: Session, patient_id: int, limit: int = 5) -> list[FeedbackCase]:
    """The patient's closed cases they have not rated yet, newest first (for their mobile page)."""
    return list(
        session.scalars(
            sa.select(FeedbackCase)
            .where(
                FeedbackCase.patient_id == patient_id,
                FeedbackCase.progress == CaseProgress.CLOSED,
                FeedbackCase.satisfaction.is_(None),
            )
            .order_by(FeedbackCase.created_at.desc(), FeedbackCase.id.desc())
            .limit(limit)
        )
    )


# --- the list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilters:
    kind: CaseKind | None = None
    category: str = ""
    progress: CaseProgress | None = None
    validity: str = ""  # "", "valid", "invalid", "unjudged"
    source: CaseSource | None = None
    department_id: int | None = None
    period: Period = field(default_factory=Period)  # registered in (UTC dates, inclusive)

    @property
    def start(self) -> str:
        return self.period.start.date().isoformat() if self.period.start else ""

    @property
    def end(self) -> str:
        return (self.period.end - timedelta(days=1)).date().isoformat() if self.period.end else ""

    def audit_detail(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "category": self.category or None,
            "progress": self.progress,
            "validity": self.validity or None,
            "source": self.source,
            "department": self.department_id,
            "start": self.start or None,
            "end": self.end or None,
        }

    def query_string(self) -> dict[str, str]:
        """The filters as the list page's parameters (for the export and statistics links)."""
        values = {
            "kind": self.kind.value if self.kind else "",
            "category": self.category,
            "progress": self.progress.value if self.progress else "",
            "validity": self.validity,
            "source": self.source.value if self.source else "",
            "department": str(self.department_id or ""),
            "start": self.start,
            "end": self.end,
        }
        return {k: v for k, v in values.items() if v}


FILTERS = ("kind", "category", "progress", "validity", "source", "department", "start", "end")


def parse_filters(values: Mapping[str, str], content_dir: Path) -> CaseFilters:
    """Raises InvalidFilter naming the first value the page cannot use."""
    category = text_value(values, "category")
    if category and category not in {c.code for c in categories(content_dir)}:
        raise InvalidFilter("category")
    validity = text_value(values, "validity")
    if validity not in ("", "valid", "invalid", "unjudged"):
        raise InvalidFilter("validity")
    filters = CaseFilters(
        kind=parse_choice(values, "kind", CaseKind),
        category=category,
        progress=parse_choice(values, "progress", CaseProgress),
        validity=validity,
        source=parse_choice(values, "source", CaseSource),
        department_id=parse_id(values, "department"),
        period=parse_period(values),
    )
    if filters.period.start and filters.period.end and filters.period.start >= filters.period.end:
        raise InvalidFilter("end")
    return filters


def _conditions(user: StaffUser, filters: CaseFilters) -> list[ColumnElement[bool]]:
    conditions = _scope(user)
    if filters.kind is not None:
        conditions.append(FeedbackCase.kind == filters.kind)
    if filters.category:
        conditions.append(FeedbackCase.category == filters.category)
    if filters.progress is not None:
        conditions.append(FeedbackCase.progress == filters.progress)
    if filters.validity == "valid":
        conditions.append(FeedbackCase.valid.is_(True))
    elif filters.validity == "invalid":
        conditions.append(FeedbackCase.valid.is_(False))
    elif filters.validity == "unjudged":
        conditions.append(FeedbackCase.valid.is_(None))
    if filters.source is not None:
        conditions.append(FeedbackCase.source == filters.source)
    if filters.department_id is not None:
        involved = sa.select(CaseDepartment.case_id).where(
            CaseDepartment.case_id == FeedbackCase.id, CaseDepartment.department_id == filters.department_id
        )
        conditions.append(sa.or_(FeedbackCase.department_id == filters.department_id, sa.exists(involved)))
    return conditions + filters.period.where(FeedbackCase.created_at)


@dataclass(frozen=True)
class CaseRow:
    case: FeedbackCase
    patient_name: str  # "" when unknown or anonymous
    assignee_name: str | None


def case_rows(
    session: Session, *, user: StaffUser, filters: CaseFilters, limit: int = PAGE_SIZE
) -> list[CaseRow]:
    """Newest first, one SQL statement whatever the page size."""
    query = (
        sa.select(FeedbackCase, Patient.name, StaffUser.display_name)
        .outerjoin(Patient, Patient.id == FeedbackCase.patient_id)
        .outerjoin(Task, Task.id == FeedbackCase.task_id)
        .outerjoin(StaffUser, StaffUser.id == Task.assignee_id)
        .where(*_conditions(user, filters))
        .order_by(FeedbackCase.created_at.desc(), FeedbackCase.id.desc())
        .limit(limit)
    )
    return [
        CaseRow(case, "" if case.anonymous else (name or ""), assignee)
        for case, name, assignee in session.execute(query)
    ]


# --- statistics ----------------------------------------------------------------------------------


@dataclass
class CaseStats:
    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_validity: dict[str, int] = field(default_factory=dict)  # valid, invalid, unjudged
    by_progress: dict[str, int] = field(default_factory=dict)
    by_satisfaction: dict[str, int] = field(default_factory=dict)  # satisfied, dissatisfied, unknown

    def share(self, count: int) -> float | None:
        return None if self.total == 0 else count / self.total


def case_stats(session: Session, *, user: StaffUser, filters: CaseFilters) -> CaseStats:
    """Totals over everything the filters select (not only the first page), grouped in SQL."""
    conditions = _conditions(user, filters)

    def grouped(column: Any) -> dict[Any, int]:
        query = sa.select(column, sa.func.count()).where(*conditions).group_by(column)
        return {key: int(n) for key, n in session.execute(query)}

    stats = CaseStats()
    stats.by_kind = {k.value: 0 for k in CaseKind} | {
        CaseKind(k).value: n for k, n in grouped(FeedbackCase.kind).items()
    }
    stats.total = sum(stats.by_kind.values())
    stats.by_category = {str(k): n for k, n in grouped(FeedbackCase.category).items()}
    stats.by_progress = {p.value: 0 for p in CaseProgress} | {
        CaseProgress(k).value: n for k, n in grouped(FeedbackCase.progress).items()
    }
    validity = grouped(FeedbackCase.valid)
    stats.by_validity = {
        "valid": validity.get(True, 0),
        "invalid": validity.get(False, 0),
        "unjudged": validity.get(None, 0),
    }
    satisfaction = grouped(FeedbackCase.satisfaction)
    stats.by_satisfaction = {s.value: 0 for s in Satisfaction} | {
        Satisfaction(k).value: n for k, n in satisfaction.items() if k is not None
    }
    stats.by_satisfaction["unknown"] = satisfaction.get(None, 0)
    return stats
