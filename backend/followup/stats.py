"""Follow-up statistics: due, reached, completed, rates, the national discharge rate, satisfaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of
from backend.models import (
    Department,
    Encounter,
    EncounterKind,
    Finding,
    OutreachStatus,
    OutreachTask,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
    Ward,
)
from questionnaires.scoring import item_points
from questionnaires.values import from_json


class GroupBy(StrEnum):
    DEPARTMENT = "department"
    WARD = "ward"
    QUESTIONNAIRE = "questionnaire"
    CHANNEL = "channel"
    DOCTOR = "doctor"  # the attending doctor of the followed-up encounter


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime  # exclusive
    department_ids: frozenset[int] | None = None  # None: every department the viewer may see
    questionnaire_id: str | None = None


@dataclass
class Row:
    key: str
    due: int = 0
    reached: int = 0
    completed: int = 0
    lost: int = 0
    cancelled: int = 0
    abnormal: int = 0

    @property
    def response_rate(self) -> float | None:
        return self.completed / self.reached if self.reached else None

    @property
    def loss_rate(self) -> float | None:
        live = self.due - self.cancelled
        return self.lost / live if live > 0 else None

    @property
    def abnormal_rate(self) -> float | None:
        return self.abnormal / self.completed if self.completed else None


@dataclass
class Report:
    filters: Filters
    group_by: GroupBy
    rows: list[Row]
    discharges: int
    discharges_followed_up: int
    satisfaction: dict[str, float] = field(default_factory=dict)  # dimension -> mean option score
    satisfaction_n: dict[str, int] = field(default_factory=dict)
    nps: float | None = None
    nps_n: int = 0

    @property
    def discharge_follow_up_rate(self) -> float | None:
        """China's indicator: discharged patients followed up ÷ discharges in the period; several follow-ups
        of one admission count once."""
        return self.discharges_followed_up / self.discharges if self.discharges else None


def _group_column(group_by: GroupBy) -> Any:
    return {
        GroupBy.DEPARTMENT: sa.func.coalesce(Department.name, ""),
        GroupBy.WARD: sa.func.coalesce(Ward.name, "-"),
        GroupBy.QUESTIONNAIRE: OutreachTask.questionnaire_id,
        GroupBy.CHANNEL: sa.func.coalesce(sa.cast(OutreachTask.last_channel, sa.String), "-"),
        GroupBy.DOCTOR: sa.func.coalesce(sa.cast(Encounter.attending_doctor_id, sa.String), "-"),
    }[group_by]


def _task_filters(query: sa.Select[Any], filters: Filters) -> sa.Select[Any]:
    query = query.where(OutreachTask.due_at >= filters.start, OutreachTask.due_at < filters.end)
    if filters.department_ids is not None:
        query = query.where(OutreachTask.department_id.in_(filters.department_ids))
    if filters.questionnaire_id:
        query = query.where(OutreachTask.questionnaire_id == filters.questionnaire_id)
    return query


def follow_up_report(session: Session, filters: Filters, group_by: GroupBy = GroupBy.DEPARTMENT) -> Report:
    key = _group_column(group_by).label("key")
    abnormal = (
        sa.select(sa.func.count(sa.distinct(QuestionnaireResponse.id)))
        .join(Finding, Finding.response_id == QuestionnaireResponse.id)
        .where(QuestionnaireResponse.outreach_task_id == OutreachTask.id)
        .correlate(OutreachTask)
        .scalar_subquery()
    )

    def count_when(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    query = (
        sa.select(
            key,
            sa.func.count(OutreachTask.id),
            count_when(OutreachTask.last_sent_at.is_not(None)),
            count_when(OutreachTask.status == OutreachStatus.COMPLETED),
            count_when(OutreachTask.status == OutreachStatus.LOST),
            count_when(OutreachTask.status == OutreachStatus.CANCELLED),
            sa.func.sum(abnormal),
        )
        .select_from(OutreachTask)
        .join(Encounter, Encounter.id == OutreachTask.encounter_id)
        .join(Department, Department.id == OutreachTask.department_id)
        .outerjoin(Ward, Ward.id == Encounter.ward_id)
        .group_by(key)
        .order_by(key)
    )
    rows = [
        Row(str(k), int(d or 0), int(r or 0), int(c or 0), int(lo or 0), int(ca or 0), int(a or 0))
        for k, d, r, c, lo, ca, a in session.execute(_task_filters(query, filters))
    ]
    discharges, followed = _discharge_rate(session, filters)
    report = Report(filters, group_by, rows, discharges, followed)
    _satisfaction(session, filters, report)
    return report


def _discharge_rate(session: Session, filters: Filters) -> tuple[int, int]:
    base = sa.select(Encounter.id).where(
        Encounter.kind == EncounterKind.DISCHARGE,
        Encounter.ended_at >= filters.start,
        Encounter.ended_at < filters.end,
    )
    if filters.department_ids is not None:
        base = base.where(Encounter.department_id.in_(filters.department_ids))
    total = session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    followed = (
        session.scalar(
            sa.select(sa.func.count()).select_from(
                base.where(
                    sa.exists(
                        sa.select(OutreachTask.id).where(
                            OutreachTask.encounter_id == Encounter.id,
                            OutreachTask.status == OutreachStatus.COMPLETED,
                        )
                    )
                ).subquery()
            )
        )
        or 0
    )
    return int(total), int(followed)


def _satisfaction(session: Session, filters: Filters, report: Report) -> None:
    query = (
        sa.select(QuestionnaireResponse, QuestionnaireVersion)
        .join(QuestionnaireVersion, QuestionnaireVersion.id == QuestionnaireResponse.version_id)
        .where(
            QuestionnaireResponse.status == ResponseStatus.COMPLETED,
            QuestionnaireResponse.completed_at >= filters.start,
            QuestionnaireResponse.completed_at < filters.end,
        )
    )
    if filters.department_ids is not None:
        query = query.where(QuestionnaireResponse.department_id.in_(filters.department_ids))
    if filters.questionnaire_id:
        query = query.where(QuestionnaireResponse.questionnaire_id == filters.questionnaire_id)
    sums: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    promoters = detractors = rated = 0
    for response, version in session.execute(query.execution_options(yield_per=1000)):
        q = definition_of(version)
        for item in q.answerable():
            if item.dimension and item.statistics and item.id in response.answers:
                points = item_points(item, from_json(item, response.answers[item.id]))
                if points is not None:
                    sums[item.dimension] += points
                    counts[item.dimension] += 1
        for score in q.scores:
            codes = {b.code for b in score.bands}
            band = response.bands.get(score.id)
            if {"promoter", "detractor"} <= codes and band:
                rated += 1
                promoters += band == "promoter"
                detractors += band == "detractor"
    report.satisfaction = {d: round(sums[d] / counts[d], 2) for d in sorted(counts)}
    report.satisfaction_n = dict(counts)
    report.nps = round(100 * (promoters - detractors) / rated, 1) if rated else None
    report.nps_n = rated
