"""The HIS source form's checks (pure): each value that does not fit is refused with its own reason, and a
fitting form keeps exactly what was typed, normalised."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from backend.imports import storage
from backend.imports.columns import ImportKind
from backend.imports.his_pull import next_watermark, parse_mark, shown_url
from backend.imports.his_sources import HisReason, HisRefused, parse_his_form
from backend.work.runs import WorkError
from tests.backend.imports.files import csv_bytes
from tests.backend.imports.jobs_helpers import stored

GOOD = {
    "name": "HIS-1",
    "url": "postgresql+psycopg://reader:pw@his.example/emr",
    "query": "SELECT * FROM v_患者 WHERE 更新时间 >= :since",
    "kind": "encounters",
    "watermark_column": "更新时间",
    "watermark": "2026-12-01T08:00",
    "interval_minutes": "30",
    "column-visit_number": "住院流水",
    "column-ward": "",
    "auto_apply": "on",
}


def test_a_fitting_form() -> None:
    form = parse_his_form(GOOD, creating=True)
    assert (form.name, form.kind, form.columns) == (
        "HIS-1",
        ImportKind.ENCOUNTERS,
        {"visit_number": "住院流水"},
    )
    assert (form.watermark, form.interval_minutes, form.auto_apply, form.enabled) == (
        "2026-12-01 08:00:00",
        30,
        True,
        False,
    )
    assert parse_his_form({**GOOD, "url": ""}, creating=False).url is None  # an edit keeps the address


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "HIS 1"}, HisReason.BAD_NAME),
        ({"url": ""}, HisReason.URL_REQUIRED),
        ({"url": "not a url"}, HisReason.BAD_URL),
        ({"url": "oracle+nosuchdriver://x/y"}, HisReason.BAD_URL),
        ({"query": "SELECT * FROM v_患者"}, HisReason.BAD_QUERY),
        ({"query": "DELETE FROM v_患者 WHERE 更新时间 >= :since"}, HisReason.BAD_QUERY),
        ({"kind": "staff"}, HisReason.BAD_KIND),
        ({"watermark_column": ""}, HisReason.BAD_COLUMN),
        ({"column-ward": "x" * 101}, HisReason.BAD_COLUMN),
        ({"watermark": "yesterday"}, HisReason.BAD_WATERMARK),
        ({"interval_minutes": "4"}, HisReason.BAD_INTERVAL),
        ({"interval_minutes": "١٠"}, HisReason.BAD_INTERVAL),  # digits, but not ASCII ones
    ],
)
def test_each_misfit_is_refused_with_its_reason(change: dict[str, str], reason: HisReason) -> None:
    with pytest.raises(HisRefused) as refused:
        parse_his_form({**GOOD, **change}, creating=True)
    assert refused.value.reason is reason


def test_the_shown_address_hides_its_password() -> None:
    assert shown_url(GOOD["url"]) == "postgresql+psycopg://reader:***@his.example/emr"
    assert parse_mark("2026-12-01 08:00:00+08:00") == datetime(2026, 12, 1, 8, 0)
    assert parse_mark("") is None


def test_the_next_watermark_is_the_latest_row_or_the_earliest_held_one(tmp_path: Path) -> None:
    rows = [
        ["P1", "2026-12-01 09:00:00"],
        ["P2", "2026-12-01 10:00:00"],
        ["P3", ""],
        ["P4", "2026-12-01 11:00"],
    ]
    file = stored(csv_bytes(["病案号", "更新时间"], rows))
    plan = tmp_path / "plan"
    plan.write_text("2\tcreate\t\t-\n3\tproblem\t\tx\n4\tproblem\t\tx\n5\tskip\t1\ty\n")
    assert next_watermark(file, plan, "更新时间", None) == "2026-12-01 10:00:00"  # P2 held; P3 has no time
    plan.write_text("2\tcreate\t\t-\n3\tskip\t2\t-\n4\tproblem\t\tx\n5\tskip\t1\ty\n")
    assert next_watermark(file, plan, "更新时间", None) == "2026-12-01 11:00:00"
    assert (
        next_watermark(file, plan, "更新时间", "2026-12-02 00:00:00") == "2026-12-02 00:00:00"
    )  # never back
    with pytest.raises(WorkError):
        next_watermark(file, plan, "修改时间", None)
    storage.file_path(file).unlink()


def test_a_drivers_reason_loses_what_it_quotes() -> None:
    from backend.imports.his_pull import _first_line

    error = ValueError('invalid input syntax for type date: "王秀英"\nLINE 1: SELECT ...')
    assert _first_line(error) == "invalid input syntax for type date: …"
