"""Streaming readers of CSV (UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030; delimiter sniffed) and Excel
.xlsx (openpyxl read-only) files: a header row, then numbered rows, never the whole file in memory.

A problem with one row (a formula, a merged cell) is reported on that row; a file that cannot be read at
all (not a spreadsheet, an undecodable byte) raises `ReadError` with a message staff can act on."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from backend.imports.problems import Problem, describe

Cell = str | int | float | date | datetime | time | None

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
ZIP_MAGIC = b"PK\x03\x04"
# GB18030 is a superset of GBK and GB2312: a file in any of them decodes with it.
CHINESE = "gb18030"
ENCODINGS = ("utf-8", CHINESE, "utf-16")


class ReadError(Exception):
    """The file cannot be read as a spreadsheet; the message says why and what to do (no cell values)."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # as a spreadsheet program numbers it: the header is row 1
    cells: tuple[Cell, ...]
    problem: str | None = None  # a reason this row cannot be read (merged cell, formula)


@dataclass(frozen=True, slots=True)
class Table:
    """An opened file: what it is, its header, and an iterator over the rows after the header."""

    format: str  # "csv" or "xlsx"
    encoding: str | None  # for CSV: the codec used
    headers: tuple[str, ...]
    rows: Iterator[Row]
    size_hint: int | None = None  # rows after the header, when the format says (xlsx)


def sniff_format(head: bytes) -> str:
    """ "csv" or "xlsx" from a file's first bytes; ReadError for anything else."""
    if head.startswith(XLS_MAGIC):
        raise ReadError("this is an old Excel .xls file: save it as .xlsx or CSV and upload that")
    if head.startswith(ZIP_MAGIC):
        return "xlsx"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "csv"
    if not head.strip():
        raise ReadError("the file is empty")
    if b"\x00" in head or head.startswith(b"%PDF"):
        raise ReadError("this is not a CSV or Excel file")
    return "csv"


def detect_encoding(head: bytes) -> str:
    """The codec of CSV text: a BOM says so; else UTF-8 when the sample decodes as UTF-8, else GB18030."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: the sample may end inside a multi-byte character
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return CHINESE
    return "utf-8"


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line most (quoted parts ignored); a comma when none does."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def open_table(path: Path, encoding: str | None = None) -> Table:
    """The file's header and rows. `encoding` (CSV only) overrides detection: "utf-8", "gb18030", ..."""
    with path.open("rb") as probe:
        head = probe.read(SNIFF_BYTES)
    kind = sniff_format(head)
    if kind == "xlsx":
        return _open_xlsx(path)
    return _open_csv(path, head, encoding)


class _Lines:
    """A CSV file's lines decoded one at a time, so an undecodable byte is reported on its own line.
    (Splitting on b"\n" is safe for UTF-8 and GB18030, whose multi-byte sequences never contain it;
    UTF-16 goes through the codec's own stream reader.)"""

    def __init__(self, path: Path, encoding: str) -> None:
        self.encoding = encoding
        self.number = 0
        self.stream: IO[bytes] = path.open("rb")
        wide = codecs.lookup(encoding).name.startswith("utf-16")
        self.text: IO[str] | None = (
            io.TextIOWrapper(self.stream, encoding=encoding, newline="") if wide else None
        )

    def __iter__(self) -> Iterator[str]:
        lines: Iterator[str | bytes] = iter(self.text) if self.text is not None else iter(self.stream)
        for line in lines:
            self.number += 1
            if isinstance(line, str):
                yield line
                continue
            try:
                yield line.decode(self.encoding)
            except UnicodeDecodeError:
                raise ReadError(
                    f"line {self.number} is not valid {self.encoding}: choose the file's encoding "
                    "(GBK files: gb18030)"
                ) from None

    def close(self) -> None:
        (self.text or self.stream).close()


def _open_csv(path: Path, head: bytes, chosen: str | None) -> Table:
    encoding = chosen or detect_encoding(head)
    if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ReadError(f"unknown encoding {encoding!r}") from None
    lines = _Lines(path, encoding)
    source = iter(lines)
    try:
        first = next(source, "")
    except (ReadError, UnicodeDecodeError):
        lines.close()
        raise ReadError(f"the first line is not valid {encoding}: choose the file's encoding") from None
    if encoding == "utf-8-sig":
        first = first.removeprefix("\ufeff")
    delimiter = sniff_delimiter(first)
    headers = tuple(_header(h) for h in next(csv.reader([first], delimiter=delimiter), []))
    if not any(headers):
        lines.close()
        raise ReadError("the first row holds no column names")
    return Table("csv", encoding, headers, _csv_rows(lines, source, delimiter))


def _csv_rows(lines: _Lines, source: Iterator[str], delimiter: str) -> Iterator[Row]:
    reader = csv.reader(source, delimiter=delimiter)
    number = 1
    try:
        for record in reader:
            number += 1
            if not any(cell.strip() for cell in record):
                continue
            yield Row(number, tuple(record))
    except csv.Error as exc:
        raise ReadError(f"row {number + 1} cannot be read as CSV ({exc})") from None
    except UnicodeDecodeError:
        raise ReadError(f"line {lines.number} is not valid {lines.encoding}") from None
    finally:
        lines.close()


def _header(value: object) -> str:
    return "" if value is None else str(value).replace("\ufeff", "").strip()


def _merged_rows(path: Path, sheet_path: str) -> dict[int, str]:
    """Rows covered by a merged range other than its first, with the range; read from the sheet's XML
    as a stream (openpyxl's read-only mode does not report merges, it shows the cells empty)."""
    covered: dict[int, str] = {}
    with zipfile.ZipFile(path) as archive, archive.open(sheet_path) as xml:
        # the same parser openpyxl reads the sheet with (expat: no external entities, entity expansion
        # bounded), so this pass adds no exposure the workbook's own reading does not have
        for _event, element in ElementTree.iterparse(xml, events=("end",)):  # noqa: S314
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "mergeCell":
                ref = element.get("ref", "")
                found = re.fullmatch(r"[A-Z]+(\d+):[A-Z]+(\d+)", ref)
                if found:
                    first, last = int(found.group(1)), int(found.group(2))
                    covered[first] = ref
                    for number in range(first + 1, last + 1):
                        covered[number] = ref
            if tag in {"row", "c", "v", "mergeCell", "f", "is", "t"}:
                element.clear()
    return covered


def _open_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # a file object, not the path: the stored upload has no .xlsx name for openpyxl to check
    handle = path.open("rb")
    try:
        book = load_workbook(handle, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        handle.close()
        raise ReadError(f"this ZIP file is not an Excel workbook ({type(exc).__name__})") from None
    sheet = book.worksheets[0]
    sheet_path = getattr(sheet, "_worksheet_path", "")
    try:
        merged = _merged_rows(path, sheet_path) if sheet_path else {}
    except (KeyError, ElementTree.ParseError):
        book.close()
        handle.close()
        raise ReadError("the workbook's first sheet cannot be read") from None
    rows = sheet.iter_rows()
    try:
        header_cells = next(rows)
    except StopIteration:
        book.close()
        handle.close()
        raise ReadError("the first sheet is empty") from None
    headers = tuple(_header(c.value) for c in header_cells)
    if not any(headers):
        book.close()
        handle.close()
        raise ReadError("the first row holds no column names")
    hint = sheet.max_row - 1 if sheet.max_row else None
    return Table("xlsx", None, headers, _xlsx_rows((book, handle), rows, headers, merged), hint)


def _xlsx_rows(
    closables: tuple[Any, ...],
    rows: Iterator[tuple[object, ...]],
    headers: tuple[str, ...],
    merged: dict[int, str],
) -> Iterator[Row]:
    try:
        for number, cells in enumerate(rows, start=2):
            values: list[Cell] = []
            problem = None
            for index, cell in enumerate(cells):
                value = getattr(cell, "value", None)
                if getattr(cell, "data_type", None) == "f" or (
                    isinstance(value, str) and value.startswith("=")
                ):
                    column = headers[index] if index < len(headers) else str(index + 1)
                    problem = problem or describe(Problem.FORMULA, column)
                    value = None
                values.append(value)
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values) and problem is None:
                continue
            if number in merged:
                problem = problem or describe(Problem.MERGED, merged[number])
            yield Row(number, tuple(values), problem)
    finally:
        for closable in closables:
            closable.close()
