"""The visit verb for many visits at once (an import file's chunk): the rules of `records.do_apply_visit`
(`visit_rules`), applied in a few statements per table instead of about six a visit. The database ends as
if each visit had gone through the single verb in order, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.planner import plan_encounters, reschedule_for_encounter
from backend.integration import visit_rules
from backend.integration.codes import holding_department, resolve_many
from backend.integration.facts import CodedValue, EncounterFacts, VisitEvent
from backend.integration.records import IdentityConflict, cancel_discharge_follow_ups
from backend.models import AuditEvent, CodeKind, Encounter, EncounterIdentifier, Ward, bulk
from backend.models.base import among, pairs_among, utcnow
from backend.services import audit


@dataclass(frozen=True, slots=True)
class Visit:
    """One visit of a batch: whose it is, the facts, what happened, and when (for a discharge without a
    discharge time, and a visit without an admission time)."""

    patient_id: int
    facts: EncounterFacts
    event: VisitEvent
    at: datetime


# Written on insert; the others (id, updated_at, version) come from the columns' defaults.
_ENCOUNTER_FIELDS = (
    "patient_id", "kind", "external_id", "department_id", "ward_id", "started_at", "ended_at", "diagnoses",
    "primary_diagnosis", "procedure_code", "attending_doctor_id", "responsible_nurse_id",
)  # fmt: skip
_LINK_FIELDS = (
    "encounter_id", "authority", "visit_number", "placeholder", "mapping_source", "department_code",
    "ward_code", "doctor_code", "patient_class", "last_event",
)  # fmt: skip


@dataclass(slots=True)
class _Applied:
    visit: Visit
    encounter: visit_rules.AnyVisit  # a held visit (changed in place), or a new one to insert
    link: visit_rules.AnyLink
    created: bool
    action: str
    moved: bool  # admission or discharge time corrected: follow-ups not yet sent move

    @property
    def id(self) -> int:
        """The visit's id (a new one's once inserted)."""
        assert self.encounter.id is not None
        return self.encounter.id


def do_apply_visits(
    session: Session,
    visits: Sequence[Visit],
    *,
    source: str,
    mapping_source: str,
    now: datetime | None = None,
) -> list[int]:
    """Visits created or updated from outside facts, each keyed by its visit number and authority, with
    one audit row each; discharges planned at once. Raises IdentityConflict before writing anything when
    a visit number belongs to another patient. Returns the encounters' ids in the visits' order."""
    now = now or utcnow()
    ids: list[int] = []
    for part in _without_repeats(visits):
        ids.extend(_apply(session, part, source, mapping_source, now))
    return ids


def _key(visit: Visit) -> tuple[str, str]:
    return visit.facts.visit.authority, visit.facts.visit.value


def _without_repeats(visits: Sequence[Visit]) -> Iterator[Sequence[Visit]]:
    """Runs in which each visit number appears once: a later event of the same visit then finds what the
    earlier one wrote, as it would one message at a time."""
    start, seen = 0, set[tuple[str, str]]()
    for n, visit in enumerate(visits):
        if _key(visit) in seen:
            yield visits[start:n]
            start, seen = n, set()
        seen.add(_key(visit))
    if start < len(visits):
        yield visits[start:]


def _apply(
    session: Session, visits: Sequence[Visit], source: str, mapping_source: str, now: datetime
) -> list[int]:
    with session.no_autoflush:
        found = _held(session, [_key(v) for v in visits])
        for visit in visits:
            held = found.get(_key(visit))
            if held is not None and held[1].patient_id != visit.patient_id:
                raise IdentityConflict("the visit number belongs to another patient", about="encounter")
        targets = _targets(session, visits, mapping_source)
        applied = [_decide(visit, found.get(_key(visit)), mapping_source, targets) for visit in visits]
    _insert(session, [a for a in applied if a.created])
    session.flush()  # the updated visits and links (their versions bumped by the model's hook)
    # only a held visit's times can move (a new one had none before)
    moved = {
        a.encounter.id: reschedule_for_encounter(session, a.encounter)
        for a in applied
        if a.moved and isinstance(a.encounter, Encounter)
    }
    discharged = [a.id for a in applied if a.visit.event is VisitEvent.DISCHARGE]
    cancelled_ids = [a.id for a in applied if a.visit.event is VisitEvent.CANCEL_DISCHARGE]
    planned = plan_encounters(session, discharged, now)
    cancelled = cancel_discharge_follow_ups(session, cancelled_ids, now) if cancelled_ids else {}
    events: list[dict[str, Any]] = []
    written = utcnow()
    for a in applied:
        detail: dict[str, Any] = {"source": source, "event": a.visit.event.value}
        if a.moved:
            detail["follow_ups_moved"] = moved[a.id]
        if a.visit.event is VisitEvent.DISCHARGE:
            detail["follow_ups_planned"] = planned[a.id]
        elif a.visit.event is VisitEvent.CANCEL_DISCHARGE:
            detail["follow_ups_cancelled"] = cancelled.get(a.id, 0)
        events.append(
            audit.row(
                a.action,
                at=written,
                patient_id=a.visit.patient_id,
                subject=("encounter", a.id),
                detail=detail,
            )
        )
    bulk.insert_rows(session, cast(sa.Table, AuditEvent.__table__), events)
    return [a.id for a in applied]


def _held(
    session: Session, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[EncounterIdentifier, Encounter]]:
    """The visits CareLoop already holds under these numbers, with their links: the links first, then
    their visits by id (a join of both let PostgreSQL's prepared plan scan every visit)."""
    links = list(
        session.scalars(
            sa.select(EncounterIdentifier).where(
                pairs_among(session, EncounterIdentifier.authority, EncounterIdentifier.visit_number, keys)
            )
        )
    )
    if not links:
        return {}
    ids = [link.encounter_id for link in links]
    encounters = {
        e.id: e for e in session.scalars(sa.select(Encounter).where(among(session, Encounter.id, ids)))
    }
    return {(link.authority, link.visit_number): (link, encounters[link.encounter_id]) for link in links}


@dataclass(slots=True)
class _Targets:
    """The batch's codes resolved (pending ones recorded), the departments of their wards, and the
    holding department once a visit needs it."""

    session: Session
    codes: dict[tuple[CodeKind, str], int | None]
    ward_departments: dict[int, int]
    holding_id: int | None = None

    def holding(self) -> int:
        if self.holding_id is None:
            self.holding_id = holding_department(self.session)
        return self.holding_id


def _targets(session: Session, visits: Sequence[Visit], mapping_source: str) -> _Targets:
    sent: dict[tuple[CodeKind, str], CodedValue] = {}
    for visit in visits:
        for kind, coded in visit_rules.sent_codes(visit.facts).items():
            sent.setdefault((kind, coded.code), coded)
    codes = resolve_many(session, mapping_source, sent)
    wards = [target for (kind, _code), target in codes.items() if kind is CodeKind.WARD and target]
    ward_departments: dict[int, int] = {}
    if wards:
        query = sa.select(Ward.id, Ward.department_id).where(among(session, Ward.id, wards))
        ward_departments = {ward: department for ward, department in session.execute(query)}
    return _Targets(session, codes, ward_departments)


def _decide(
    visit: Visit,
    held: tuple[EncounterIdentifier, Encounter] | None,
    mapping_source: str,
    targets: _Targets,
) -> _Applied:
    """The single verb's rules on one visit, in memory: a new visit is a plain row (inserted in bulk), a
    held one's objects are changed in place and flushed."""
    facts, event = visit.facts, visit.event
    sent = visit_rules.sent_codes(facts)
    resolved = {kind: targets.codes[(kind, coded.code)] for kind, coded in sent.items()}
    previous_start: datetime | None = None
    encounter: visit_rules.AnyVisit
    link: visit_rules.AnyLink
    if held is None:
        encounter, link = visit_rules.new_plain_visit(visit.patient_id, facts, event, visit.at)
        action = "encounter.created"
    else:
        link, encounter = held
        visit_rules.reconcile_placeholder(link, event)
        action = "encounter.updated"
    visit_rules.place(
        encounter, link, facts, mapping_source, resolved,
        ward_department=targets.ward_departments.__getitem__, holding=targets.holding,
    )  # fmt: skip
    if held is not None:
        previous_start = encounter.started_at
        if facts.started_at is not None:
            encounter.started_at = facts.started_at
    action, previous_end = visit_rules.fill(encounter, link, facts, event, visit.at, action)
    moved = visit_rules.times_moved(encounter, event, previous_start, previous_end)
    return _Applied(visit, encounter, link, held is None, action, moved)


def _insert(session: Session, created: list[_Applied]) -> None:
    """New visits in one statement, then their links in another. On PostgreSQL the ids are taken from the
    sequence first; on SQLite they come back in row order from an executemany."""
    if not created:
        return
    table = cast(sa.Table, Encounter.__table__)
    rows = [{name: getattr(a.encounter, name) for name in _ENCOUNTER_FIELDS} for a in created]
    if bulk.postgres(session):
        ids = bulk.new_ids(session, table, len(created))
        written = utcnow()
        numbered = [{"id": id_, **row, "updated_at": written} for id_, row in zip(ids, rows, strict=True)]
        bulk.insert_rows(session, table, numbered)
    else:
        statement = sa.insert(Encounter).returning(Encounter.id, sort_by_parameter_order=True)
        ids = list(session.scalars(statement, rows))
    for a, encounter_id in zip(created, ids, strict=True):
        a.encounter.id = encounter_id
        a.link.encounter_id = encounter_id
    stamp = {"updated_at": utcnow()}
    links = [{name: getattr(a.link, name) for name in _LINK_FIELDS} | stamp for a in created]
    bulk.insert_rows(session, cast(sa.Table, EncounterIdentifier.__table__), links)
