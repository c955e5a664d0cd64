"""The statistics report as an Excel workbook (openpyxl), with the filters that produced it."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font

from backend.followup.stats import Report
from backend.services.spreadsheet import append_row

COLUMNS = (
    "group",
    "due",
    "reached",
    "completed",
    "lost",
    "cancelled",
    "response rate",
    "loss rate",
    "abnormal rate",
)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def to_xlsx(report: Report, *, department_names: list[str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Follow-up"
    append_row(sheet, ["Period", report.filters.start.isoformat(), report.filters.end.isoformat()])
    append_row(sheet, ["Departments", ", ".join(department_names) if department_names else "all permitted"])
    append_row(sheet, ["Questionnaire", report.filters.questionnaire_id or "all"])
    append_row(sheet, ["Grouped by", report.group_by.value])
    append_row(sheet, [])
    append_row(sheet, list(COLUMNS))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in report.rows:
        append_row(
            sheet,
            [
                row.key,
                row.due,
                row.reached,
                row.completed,
                row.lost,
                row.cancelled,
                _pct(row.response_rate),
                _pct(row.loss_rate),
                _pct(row.abnormal_rate),
            ],
        )
    append_row(sheet, [])
    append_row(sheet, ["Discharges", report.discharges])
    append_row(sheet, ["Discharges followed up", report.discharges_followed_up])
    append_row(sheet, ["Discharge follow-up rate", _pct(report.discharge_follow_up_rate)])
    satisfaction = book.create_sheet("Satisfaction")
    append_row(satisfaction, ["dimension", "mean score", "answers"])
    for dimension, mean in report.satisfaction.items():
        append_row(satisfaction, [dimension, mean, report.satisfaction_n[dimension]])
    append_row(satisfaction, [])
    append_row(satisfaction, ["NPS", report.nps, report.nps_n])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
