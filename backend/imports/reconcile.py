"""Reconciliation of a file against CareLoop: what the file lists that CareLoop does not hold, and what
CareLoop holds from that source that the file does not list. Written as an Excel workbook, sealed under
the data key (it names patients), for staff to download."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from openpyxl import Workbook

from backend.app.db import session_scope
from backend.imports import lookup
from backend.imports.columns import ColumnMap, ImportKind
from backend.imports.readers import Row
from backend.imports.values import text
from backend.models import EncounterIdentifier, Patient, PatientIdentifier
from backend.security.crypto import current_cipher
from backend.security.identifiers import normalise_code
from backend.services.spreadsheet import append_row

CHUNK = 2000


def report_kind(job_id: int) -> str:
    """The associated data a report is sealed with: a report cannot be passed off as another job's."""
    return f"import_report:{job_id}"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    missing_here: int  # in the file, not in CareLoop
    missing_there: int  # in CareLoop (from this source), not in the file
    sealed: bytes  # the workbook, sealed

    @property
    def counts(self) -> dict[str, int]:
        return {"in the file only": self.missing_here, "in CareLoop only": self.missing_there}


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def reconcile(
    job_id: int, kind: ImportKind, source: str, rows: Iterator[Row], columns: ColumnMap
) -> Reconciliation:
    """Patients (or visits, for an encounter file) by identifier, both ways. The file is streamed; what it
    lists is remembered as blind indexes (or visit numbers) only."""
    book = Workbook(write_only=True)
    here = book.create_sheet("In the file only")
    there = book.create_sheet("In CareLoop only")
    if kind.organisation or kind is ImportKind.STAFF:
        return _reconcile_org(job_id, kind, rows, columns, book)
    visits = kind is ImportKind.ENCOUNTERS
    field = "visit_number" if visits else "identifier"
    append_row(here, ["row", "visit number" if visits else "identifier", "authority"])
    append_row(there, ["CareLoop id", "visit number" if visits else "identifier", "authority"])
    index = columns.columns.get(field)
    authority_index = columns.columns.get("authority")
    listed: set[tuple[str, str]] = set()
    missing_here = 0
    for chunk in _chunks(rows):
        keys: list[tuple[int, tuple[str, str]]] = []
        for row in chunk:
            value = text(row.cells[index]) if index is not None and index < len(row.cells) else ""
            if not value:
                continue
            authority = source
            if authority_index is not None and authority_index < len(row.cells):
                authority = text(row.cells[authority_index]) or source
            keys.append((row.number, (authority, normalise_code(value) if visits else value)))
        with session_scope() as session:
            if visits:
                found = lookup.visit_keys(session, [k for _n, k in keys])
                listed.update(k for _n, k in keys)
            else:
                found = set(lookup.patient_ids(session, [k for _n, k in keys]))
                listed.update((a, PatientIdentifier.index(v)) for _n, (a, v) in keys)
        for number, key in keys:
            if key not in found:
                missing_here += 1
                append_row(here, [number, key[1], key[0]])
    missing_there = 0
    with session_scope() as session:
        if visits:
            visit_query = sa.select(
                EncounterIdentifier.encounter_id,
                EncounterIdentifier.visit_number,
                EncounterIdentifier.authority,
            ).where(EncounterIdentifier.authority == source)
            for encounter_id, visit_number, authority in session.execute(
                visit_query.execution_options(yield_per=CHUNK)
            ):
                if (authority, visit_number) not in listed:
                    missing_there += 1
                    append_row(there, [encounter_id, visit_number, authority])
        else:
            query = (
                sa.select(PatientIdentifier)
                .join(Patient, Patient.id == PatientIdentifier.patient_id)
                .where(PatientIdentifier.authority == source)
            )
            for identifier in session.scalars(query.execution_options(yield_per=CHUNK)):
                if (identifier.authority, identifier.value_bidx) not in listed:
                    missing_there += 1
                    append_row(there, [identifier.patient_id, identifier.value, identifier.authority])
    out = io.BytesIO()
    book.save(out)
    sealed = current_cipher().seal(report_kind(job_id), out.getvalue())
    return Reconciliation(missing_here, missing_there, sealed)


def _reconcile_org(
    job_id: int, kind: ImportKind, rows: Iterator[Row], columns: ColumnMap, book: Workbook
) -> Reconciliation:
    """Departments, wards or clinicians by the hospital's code, or staff accounts by username, both ways
    (neither names a patient)."""
    field = "username" if kind is ImportKind.STAFF else "code"
    here, there = book.worksheets
    append_row(here, ["row", field])
    append_row(there, ["CareLoop id", field])
    index = columns.columns.get(field)
    listed: dict[str, int] = {}
    for row in rows:
        value = text(row.cells[index]) if index is not None and index < len(row.cells) else ""
        if field == "username":
            value = value.lower()  # as the accounts hold them
        if value:
            listed.setdefault(value, row.number)
    with session_scope() as session:
        held = lookup.usernames(session) if kind is ImportKind.STAFF else lookup.org_codes(session, kind)
    held_codes = {code for _id, code in held}
    missing_here = 0
    for code, number in listed.items():
        if code not in held_codes:
            missing_here += 1
            append_row(here, [number, code])
    missing_there = 0
    for id_, code in held:
        if code not in listed:
            missing_there += 1
            append_row(there, [id_, code])
    out = io.BytesIO()
    book.save(out)
    sealed = current_cipher().seal(report_kind(job_id), out.getvalue())
    return Reconciliation(missing_here, missing_there, sealed)
