"""Rows of staff exports' Excel workbooks, formula-safe: every export appends its rows through here.

Text that staff or patients typed (a case summary, a department's name) can start with `=`, `+`, `-` or
`@`; Excel and LibreOffice would run it as a formula when the workbook is opened (openpyxl even stores a
string starting with `=` as one). Such a value is written with a leading `'`, so it stays text; a tab or
carriage return at the start is treated the same, as some spreadsheet programs skip them first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: Any) -> Any:
    """The value as a cell should hold it: text that would start a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def append_row(sheet: Worksheet, values: Iterable[Any]) -> None:
    sheet.append([formula_safe(value) for value in values])
