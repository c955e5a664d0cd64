"""Reading and searching the seven resource types: one query per search (department scoping applied in
it), keyset paging on the row id, and the related rows each page needs loaded in a few queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.fhir import render
from backend.fhir.outcome import FhirError, IssueType
from backend.fhir.params import Criteria, DateBound, IdentifierToken
from backend.models import (
    ConsentEvent,
    Conversation,
    Department,
    Direction,
    Encounter,
    EncounterIdentifier,
    Finding,
    Message,
    MessageStatus,
    Patient,
    PatientIdentifier,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
    Task,
    Ward,
)
from backend.services.patients import in_departments

Row = Any


@dataclass(frozen=True)
class Spec:
    """How one resource type is stored: its row, columns the common parameters filter on, the FHIR
    statuses as conditions, and who may see a row when the client is limited to a department."""

    model: Any
    # columns as mapped attributes or expressions (typed loosely: SQLAlchemy's own types differ per kind)
    id: Any
    updated: Any
    date: Any
    patient: Any
    statuses: dict[str, sa.ColumnElement[bool]]
    department: Callable[[int], sa.ColumnElement[bool]] | None
    base: Callable[[], Any]


def _patient_in(column: Any) -> Callable[[int], sa.ColumnElement[bool]]:
    return lambda department_id: column.in_(sa.select(Patient.id).where(in_departments({department_id})))


_later_consent = sa.orm.aliased(ConsentEvent)
_current_consent = ~sa.exists(
    sa.select(_later_consent.id).where(
        _later_consent.patient_id == ConsentEvent.patient_id,
        _later_consent.purpose == ConsentEvent.purpose,
        _later_consent.channel == ConsentEvent.channel,
        _later_consent.id > ConsentEvent.id,
    )
)
_sent = [
    MessageStatus.QUEUED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.FAILED,
    MessageStatus.NOT_SENT,
]

SPECS: dict[str, Spec] = {
    "Patient": Spec(
        Patient, Patient.id, Patient.updated_at, None, None, {},
        lambda department_id: in_departments({department_id}), lambda: sa.select(Patient),
    ),
    "Encounter": Spec(
        Encounter, Encounter.id, Encounter.updated_at, Encounter.started_at, Encounter.patient_id,
        {"finished": Encounter.ended_at.is_not(None), "in-progress": Encounter.ended_at.is_(None)},
        lambda department_id: Encounter.department_id == department_id, lambda: sa.select(Encounter),
    ),
    "Questionnaire": Spec(
        QuestionnaireVersion, QuestionnaireVersion.id, QuestionnaireVersion.published_at,
        QuestionnaireVersion.published_at, None, {"active": sa.true()}, None,
        lambda: sa.select(QuestionnaireVersion),
    ),
    "QuestionnaireResponse": Spec(
        QuestionnaireResponse, QuestionnaireResponse.id, QuestionnaireResponse.updated_at,
        QuestionnaireResponse.updated_at, QuestionnaireResponse.patient_id,
        {
            "completed": QuestionnaireResponse.status == ResponseStatus.COMPLETED,
            "in-progress": QuestionnaireResponse.status == ResponseStatus.IN_PROGRESS,
        },
        lambda department_id: QuestionnaireResponse.department_id == department_id,
        lambda: sa.select(QuestionnaireResponse),
    ),
    "Task": Spec(
        Task, Task.id, sa.func.coalesce(Task.closed_at, Task.created_at), Task.created_at, Task.patient_id,
        {fhir: Task.status == ours for ours, fhir in render.TASK_STATUS.items()},
        lambda department_id: Task.department_id == department_id,
        # staff tasks raised from findings (abnormal answers), the ones an EHR follows up
        lambda: sa.select(Task).where(sa.exists(sa.select(Finding.id).where(Finding.task_id == Task.id))),
    ),
    "Communication": Spec(
        Message, Message.id, Message.created_at, Message.created_at, Conversation.patient_id,
        {
            "completed": Message.status.in_([MessageStatus.SENT, MessageStatus.DELIVERED]),
            "preparation": Message.status == MessageStatus.QUEUED,
            "not-done": Message.status.in_([MessageStatus.FAILED, MessageStatus.NOT_SENT]),
        },
        _patient_in(Conversation.patient_id),
        lambda: sa.select(Message, Conversation.patient_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.direction == Direction.OUTBOUND,
            Message.status.in_(_sent),
            Conversation.patient_id.is_not(None),
        ),
    ),
    "Consent": Spec(
        ConsentEvent, ConsentEvent.id, ConsentEvent.at, ConsentEvent.at, ConsentEvent.patient_id,
        {"active": _current_consent, "inactive": ~_current_consent},
        _patient_in(ConsentEvent.patient_id), lambda: sa.select(ConsentEvent, _current_consent),
    ),
}  # fmt: skip


def _dated(column: sa.ColumnElement[Any], bound: DateBound) -> sa.ColumnElement[bool]:
    return {
        "eq": sa.and_(column >= bound.start, column < bound.end),
        "gt": column >= bound.end,
        "ge": column >= bound.start,
        "lt": column < bound.start,
        "le": column < bound.end,
    }[bound.prefix]


def _identifier_condition(resource_type: str, tokens: list[IdentifierToken]) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = []
    for token in tokens:
        if resource_type == "Patient":
            found = sa.select(PatientIdentifier.patient_id).where(
                PatientIdentifier.value_bidx == PatientIdentifier.index(token.value)
            )
            if token.authority is not None:
                found = found.where(PatientIdentifier.authority == token.authority)
            conditions.append(Patient.id.in_(found))
            if token.authority in (None, render.MRN_SYSTEM):
                conditions.append(Patient.mrn_bidx == Patient.code_index("mrn", token.value))
        elif resource_type == "Encounter":
            visit = sa.select(EncounterIdentifier.encounter_id).where(
                EncounterIdentifier.visit_number == token.value
            )
            if token.authority is not None:
                visit = visit.where(EncounterIdentifier.authority == token.authority)
            conditions.append(Encounter.id.in_(visit))
        else:  # Questionnaire: its id in CareLoop's identifier system
            conditions.append(QuestionnaireVersion.questionnaire_id == token.value)
    return sa.or_(*conditions)


def query(resource_type: str, criteria: Criteria, department_id: int | None) -> sa.Select[Any]:
    """The rows matching the criteria, in id order, before paging."""
    spec = SPECS[resource_type]
    select: sa.Select[Any] = spec.base()
    if criteria.ids:
        select = select.where(spec.id.in_(criteria.ids))
    if criteria.identifiers:
        select = select.where(_identifier_condition(resource_type, criteria.identifiers))
    if criteria.patient is not None and spec.patient is not None:
        select = select.where(spec.patient == criteria.patient)
    for bound in criteria.dates:
        if spec.date is not None:
            select = select.where(_dated(spec.date, bound))
    for bound in criteria.last_updated:
        select = select.where(_dated(spec.updated, bound))
    if criteria.statuses:
        unknown = [s for s in criteria.statuses if s not in spec.statuses]
        if unknown:
            raise FhirError(
                400, IssueType.VALUE,
                f"status {unknown[0]!r}: {resource_type} statuses here are " + ", ".join(spec.statuses),
                expression="status",
            )  # fmt: skip
        select = select.where(sa.or_(*(spec.statuses[s] for s in criteria.statuses)))
    if department_id is not None and spec.department is not None:
        select = select.where(spec.department(department_id))
    return select


@dataclass(frozen=True)
class Page:
    resources: list[dict[str, Any]]
    total: int
    next_cursor: int | None
    patient_ids: list[int]  # for the audit row


def search(
    session: Session,
    resource_type: str,
    criteria: Criteria,
    department_id: int | None,
    *,
    lang: str,
    with_total: bool = True,
) -> Page:
    spec = SPECS[resource_type]
    select = query(resource_type, criteria, department_id)
    total = 0
    if with_total:
        total = session.scalar(sa.select(sa.func.count()).select_from(select.order_by(None).subquery())) or 0
    if criteria.cursor is not None:
        select = select.where(spec.id > criteria.cursor)
    rows = session.execute(select.order_by(spec.id).limit(criteria.count + 1)).all()
    more = len(rows) > criteria.count
    rows = rows[: criteria.count]
    resources, patient_ids = render_rows(session, resource_type, rows, lang=lang)
    next_cursor = int(resources[-1]["id"]) if more and resources else None
    return Page(resources, int(total), next_cursor, patient_ids)


def searchset(page: Page, type_url: str, items: list[tuple[str, str]]) -> dict[str, Any]:
    """The page as a searchset Bundle, with `self` and, while more rows follow, `next` links."""
    links = [{"relation": "self", "url": type_url + (f"?{urlencode(items)}" if items else "")}]
    if page.next_cursor is not None:
        following = [*((n, v) for n, v in items if n != "_cursor"), ("_cursor", str(page.next_cursor))]
        links.append({"relation": "next", "url": f"{type_url}?{urlencode(following)}"})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": [
            {"fullUrl": f"{type_url}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page.resources
        ],
    }


def read(
    session: Session, resource_type: str, row_id: int, department_id: int | None, *, lang: str
) -> tuple[dict[str, Any], int | None]:
    """One resource and its patient's id; 404 when it does not exist or the client may not see it."""
    criteria = Criteria(ids=[row_id], count=1)
    page = search(session, resource_type, criteria, department_id, lang=lang, with_total=False)
    if not page.resources:
        raise FhirError(404, IssueType.NOT_FOUND, f"{resource_type}/{row_id} is not known")
    return page.resources[0], (page.patient_ids[0] if page.patient_ids else None)


def render_rows(
    session: Session, resource_type: str, rows: Sequence[Row], *, lang: str
) -> tuple[list[dict[str, Any]], list[int]]:
    """The page's rows as FHIR, with their related rows fetched once for the page."""
    if resource_type == "Patient":
        patients = [row[0] for row in rows]
        identifiers: dict[int, list[PatientIdentifier]] = defaultdict(list)
        for item in session.scalars(
            sa.select(PatientIdentifier)
            .where(PatientIdentifier.patient_id.in_([p.id for p in patients]))
            .order_by(PatientIdentifier.id)
        ):
            identifiers[item.patient_id].append(item)
        return [render.patient(p, identifiers[p.id]) for p in patients], [p.id for p in patients]
    if resource_type == "Encounter":
        encounters = [row[0] for row in rows]
        links: dict[int, list[EncounterIdentifier]] = defaultdict(list)
        for link in session.scalars(
            sa.select(EncounterIdentifier)
            .where(EncounterIdentifier.encounter_id.in_([e.id for e in encounters]))
            .order_by(EncounterIdentifier.id)
        ):
            links[link.encounter_id].append(link)
        departments = {
            d.id: d
            for d in session.scalars(
                sa.select(Department).where(Department.id.in_({e.department_id for e in encounters}))
            )
        }
        wards = {
            w.id: w
            for w in session.scalars(
                sa.select(Ward).where(Ward.id.in_({e.ward_id for e in encounters if e.ward_id}))
            )
        }
        return [
            render.encounter(e, links[e.id], departments[e.department_id], wards.get(e.ward_id or 0))
            for e in encounters
        ], [e.patient_id for e in encounters]
    if resource_type == "Questionnaire":
        return [render.questionnaire(row[0], lang) for row in rows], []
    if resource_type == "QuestionnaireResponse":
        responses = [row[0] for row in rows]
        versions = {
            v.id: v
            for v in session.scalars(
                sa.select(QuestionnaireVersion).where(
                    QuestionnaireVersion.id.in_({r.version_id for r in responses})
                )
            )
        }
        return [render.questionnaire_response(r, versions[r.version_id]) for r in responses], [
            r.patient_id for r in responses
        ]
    if resource_type == "Task":
        tasks = [row[0] for row in rows]
        return [render.task(t) for t in tasks], [t.patient_id for t in tasks if t.patient_id is not None]
    if resource_type == "Communication":
        return [render.communication(row[0], row[1]) for row in rows], [row[1] for row in rows]
    return [render.consent(row[0], bool(row[1])) for row in rows], [row[0].patient_id for row in rows]
