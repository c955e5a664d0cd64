"""Hospital files written by the tests: CSV in the encodings HIS exports use, and Excel workbooks, with
the column headers and names hospitals in China and Vietnam write."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

PATIENT_HEADERS_ZH = ["病案号", "姓名", "性别", "出生日期", "手机号", "语言"]
PATIENT_HEADERS_VI = ["Mã bệnh nhân", "Họ tên", "Giới tính", "Ngày sinh", "Số điện thoại", "Ngôn ngữ"]
ENCOUNTER_HEADERS_ZH = ["病案号", "住院号", "就诊类型", "科室代码", "入院时间", "出院时间", "诊断编码"]

PATIENTS_ZH = [
    ["P0001", "王秀英", "女", "1956-03-12", "13800138000", "中文"],
    ["P0002", "李建国", "男", "1948/11/02", "139 1234 5678", "中文"],
    ["P0003", "张伟", "男", "1990年7月1日", "", ""],
]
PATIENTS_VI = [
    ["VN001", "Nguyễn Thị Lan", "Nữ", "12/03/1962", "+84 912 345 678", "Tiếng Việt"],
    ["VN002", "Trần Văn Hùng", "Nam", "05/08/1970", "+84 903 123 456", "Tiếng Việt"],
]


def csv_bytes(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8", delimiter: str = ","
) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def xlsx(
    path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, merge: str | None = None
) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    if merge:
        sheet.merge_cells(merge)
    book.save(path)
    return path
