"""The admin lists as Excel workbooks (openpyxl, formula-safe through backend/services/spreadsheet.py):
what the page shows, with the filters that chose it on top."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openpyxl import Workbook

from backend.admin.audit_log import AuditRow
from backend.admin.org import Entry, OrgKind
from backend.admin.people import StaffRow
from backend.models import Clinician, Ward
from backend.services.spreadsheet import append_row
from bots.domain import LANGUAGES


def _book(
    title: str, filters: Mapping[str, Any], header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for name, value in filters.items():
        append_row(sheet, [name, "all" if value is None else str(value)])
    append_row(sheet, [])
    append_row(sheet, list(header))
    for row in rows:
        append_row(sheet, list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


workbook = _book  # the same layout for the other staff lists that export a workbook


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def staff_xlsx(rows: Sequence[StaffRow], filters: Mapping[str, Any]) -> bytes:
    header = ("username", "name", "roles", "departments", "language", "active", "last sign-in (UTC)")
    return _book(
        "Staff",
        filters,
        header,
        (
            (
                r.user.username,
                r.user.display_name,
                ", ".join(r.user.role_list()),
                ", ".join(sorted(d.code for d in r.user.departments)),
                r.user.language,
                "yes" if r.user.active else "no",
                _when(r.last_sign_in),
            )
            for r in rows
        ),
    )


def org_xlsx(
    kind: OrgKind, rows: Sequence[Entry], filters: Mapping[str, Any], departments: Mapping[int, str]
) -> bytes:
    header = ["code", *(f"name ({lang})" for lang in LANGUAGES), "active"]
    if kind is not OrgKind.DEPARTMENT:
        header.insert(1, "department")
    if kind is OrgKind.CLINICIAN:
        header[2:2] = ["kind", "title"]

    def cells(entry: Entry) -> list[Any]:
        out: list[Any] = [entry.code or ""]
        if isinstance(entry, Ward | Clinician):
            out.append(departments.get(entry.department_id, ""))
        if isinstance(entry, Clinician):
            out += [entry.kind.value, entry.title or ""]
        out += [entry.names.get(lang, "") for lang in LANGUAGES]
        out.append("yes" if entry.active else "no")
        return out

    return _book(kind.value.title(), filters, header, (cells(e) for e in rows))


def audit_xlsx(rows: Sequence[AuditRow], filters: Mapping[str, Any]) -> bytes:
    header = ("time (UTC)", "action", "staff", "patient", "subject", "address", "detail")
    return _book(
        "Audit",
        filters,
        header,
        (
            (
                _when(r.event.at),
                r.event.action,
                r.staff_name or "",
                r.event.patient_id or "",
                f"{r.event.subject_type} {r.event.subject_id}" if r.event.subject_type else "",
                r.event.ip or "",
                str(r.event.detail or ""),
            )
            for r in rows
        ),
    )


def calendar_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A site's calendar: the header and the days only, so the file can be edited and imported again."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Calendar"
    append_row(sheet, list(header))
    for row in rows:
        append_row(sheet, list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
