"""Feedback cases as an Excel workbook (openpyxl): the filters that chose them, the list, the statistics."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from backend.services.case_queries import CaseFilters, CaseRow, CaseStats
from backend.services.spreadsheet import append_row

COLUMNS = (
    "number",
    "registered (UTC)",
    "kind",
    "category",
    "source",
    "patient",
    "lead department",
    "progress",
    "valid",
    "satisfaction",
    "assignee",
    "closed (UTC)",
    "summary",
)


def _bold_last(sheet: Worksheet) -> None:
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)


def to_xlsx(
    rows: Sequence[CaseRow],
    stats: CaseStats,
    filters: CaseFilters,
    *,
    label: Callable[[str, str], str],
    department_names: dict[int, str],
) -> bytes:
    """`label(group, code)` names a code in the viewer's language (group: kind, category, progress …)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Cases"
    chosen = filters.audit_detail()
    append_row(sheet, ["Filters"])
    _bold_last(sheet)
    for name, value in chosen.items():
        if name == "department" and value is not None:
            value = department_names.get(int(value), str(value))
        append_row(sheet, [name, "all" if value is None else str(value)])
    append_row(sheet, [])
    append_row(sheet, list(COLUMNS))
    _bold_last(sheet)
    for row in rows:
        case = row.case
        append_row(
            sheet,
            [
                case.id,
                case.created_at.strftime("%Y-%m-%d %H:%M"),
                label("kind", case.kind.value),
                label("category", case.category),
                label("source", case.source.value),
                row.patient_name or ("anonymous" if case.anonymous else ""),
                department_names.get(case.department_id, "") if case.department_id else "",
                label("progress", case.progress.value),
                "" if case.valid is None else ("yes" if case.valid else "no"),
                label("satisfaction", case.satisfaction.value) if case.satisfaction else "",
                row.assignee_name or "",
                case.closed_at.strftime("%Y-%m-%d %H:%M") if case.closed_at else "",
                case.summary or "",
            ],
        )
    summary = book.create_sheet("Statistics")
    append_row(summary, ["group", "value", "count", "share"])
    _bold_last(summary)
    append_row(summary, ["total", "", stats.total, 1.0 if stats.total else None])
    groups = (
        ("kind", stats.by_kind),
        ("category", stats.by_category),
        ("validity", stats.by_validity),
        ("progress", stats.by_progress),
        ("satisfaction", stats.by_satisfaction),
    )
    for group, counts in groups:
        for code, count in counts.items():
            share = stats.share(count)
            append_row(
                summary, [group, label(group, code), count, None if share is None else round(share, 4)]
            )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
