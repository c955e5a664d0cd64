"""Reading hospital files: UTF-8, UTF-8 with a BOM, GBK and UTF-16 CSV with any common delimiter, Excel
workbooks with merged cells and formulas reported on their rows, and clear errors for what is not a
spreadsheet at all."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from backend.imports.readers import ReadError, detect_encoding, open_table, sniff_delimiter
from tests.backend.imports.files import PATIENT_HEADERS_ZH, PATIENTS_ZH, csv_bytes, write, xlsx


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("gbk", "gb18030"),
        ("gb18030", "gb18030"),
        ("utf-16", "utf-16"),
    ],
)
def test_csv_in_each_encoding_reads_the_same_chinese_rows(
    tmp_path: Path, encoding: str, expected: str
) -> None:
    path = write(tmp_path / "patients.csv", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH, encoding=encoding))
    table = open_table(path)
    assert table.format == "csv" and table.encoding == expected
    assert table.headers == tuple(PATIENT_HEADERS_ZH)  # no BOM left on the first header
    rows = list(table.rows)
    assert [r.number for r in rows] == [2, 3, 4]
    assert rows[0].cells == tuple(PATIENTS_ZH[0]) and rows[0].problem is None


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path / "p.csv", csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH, delimiter=delimiter))
    assert [r.cells[1] for r in open_table(path).rows] == ["王秀英", "李建国", "张伟"]


def test_sniffing_ignores_delimiters_inside_quotes_and_defaults_to_a_comma() -> None:
    assert sniff_delimiter('"a;b;c",d,e\r\n') == ","
    assert sniff_delimiter("single") == ","


def test_a_chosen_encoding_overrides_detection_and_a_wrong_one_is_a_clear_error(tmp_path: Path) -> None:
    data = csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH, encoding="gbk")
    assert detect_encoding(data) == "gb18030"
    path = write(tmp_path / "gbk.csv", data)
    with pytest.raises(ReadError, match="not valid utf-8"):
        open_table(path, "utf-8")
    with pytest.raises(ReadError, match="unknown encoding"):
        open_table(path, "klingon")


def test_an_undecodable_row_deep_in_the_file_names_its_row(tmp_path: Path) -> None:
    rows = [[f"P{n}", "张伟", "男", "1990-01-01", "", ""] for n in range(3000)]
    data = csv_bytes(PATIENT_HEADERS_ZH, rows) + "P9,李四,男\r\n".encode("gbk")  # past the sniffed sample
    table = open_table(write(tmp_path / "mixed.csv", data))
    with pytest.raises(ReadError, match="line 3002 is not valid utf-8"):
        list(table.rows)


def test_blank_lines_are_skipped_and_row_numbers_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "病案号,姓名\r\nP1,王\r\n,\r\n\r\nP2,李\r\n".encode())
    assert [(r.number, r.cells[0]) for r in open_table(path).rows] == [(2, "P1"), (5, "P2")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel .xls"),
        (b"%PDF-1.7\n%\xe2\xe3", "not a CSV or Excel"),
        (bytes(range(256)) * 4, "not a CSV or Excel"),
        (b"PK\x03\x04" + b"\x00" * 60, "not an Excel workbook"),
        (b"\r\n\r\n", "empty"),
    ],
)
def test_what_is_not_a_spreadsheet_is_a_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ReadError, match=message):
        open_table(write(tmp_path / "upload", data))


def test_a_header_row_of_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="no column names"):
        open_table(write(tmp_path / "p.csv", b",,\r\nP1,a,b\r\n"))


def test_excel_rows_keep_typed_dates_and_report_merged_cells_and_formulas(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["P0001", "王秀英", "女", datetime(1956, 3, 12), 13800138000, "中文"],
        ["P0002", "李建国", "男", "1948-11-02", '=A2&"x"', "中文"],
        ["P0003", "张伟", "男", "1990-07-01", None, None],
        [None, None, "男", "1991-07-01", None, None],
        ["P0005", "Nguyễn Thị Lan", "Nữ", "12/03/1962", None, "vi"],
    ]
    path = xlsx(tmp_path / "patients.upload", PATIENT_HEADERS_ZH, rows, merge="A4:B5")  # no .xlsx name
    table = open_table(path)
    assert table.format == "xlsx" and table.headers == tuple(PATIENT_HEADERS_ZH) and table.size_hint == 5
    read = {r.number: r for r in table.rows}
    assert read[2].cells[3] == datetime(1956, 3, 12) and read[2].problem is None
    assert read[3].problem == "a formula instead of a value · 手机号"
    assert read[4].problem == read[5].problem == "merged cells · A4:B5"
    assert read[6].problem is None and read[6].cells[1] == "Nguyễn Thị Lan"
