"""The imports page: upload (size-bounded) → dry run with its problems → confirm → the reconciliation
download; in three languages; only for the admin and integration roles."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.models import Patient, Role
from backend.work import runs
from tests import factories
from tests.backend.imports.files import PATIENT_HEADERS_ZH, PATIENTS_ZH, csv_bytes
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.conftest import reset_caches

BAD = [["P0005", "钱多多", "男", "1985-01-01", "12345", "中文"]]


def _sign_in(db: Session, client: TestClient, role: Role = Role.INTEGRATION, language: str = "en") -> None:
    user = factories.staff(db, username="feed", role=role)
    user.language = language
    db.commit()
    assert sign_in(client, "feed").status_code == 303


def _upload(client: TestClient, data: bytes, **form: str) -> object:
    page = client.get("/staff/imports")
    fields = {"csrf_token": _csrf(page.text), "kind": "patients", "source": "HIS", **form}
    return client.post("/staff/imports", data=fields, files={"file": ("病人.csv", data, "text/csv")})


def test_upload_dry_run_confirm_and_reconciliation(db: Session, client: TestClient) -> None:
    _sign_in(db, client)
    uploaded = _upload(client, csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH + BAD, encoding="gbk"))
    runs.wait_for_background()
    page = client.get(uploaded.url)  # type: ignore[attr-defined]
    assert page.status_code == 200 and 'id="confirm"' in page.text and "病人.csv" in page.text
    assert (
        "invalid phone number" in page.text and "手机号" in page.text and 'id="import-columns"' in page.text
    )
    problems = client.get(f"{uploaded.url}/problems.csv")  # type: ignore[attr-defined]
    assert problems.text.splitlines()[1] == "5,invalid phone number,手机号"
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
    confirmed = client.post(f"{uploaded.url}/confirm", data={"csrf_token": _csrf(page.text)})  # type: ignore[attr-defined]
    runs.wait_for_background()
    done = client.get(confirmed.url)
    assert 'id="reconciliation"' in done.text
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 3
    report = client.get(f"{confirmed.url}/reconciliation.xlsx")
    assert report.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(report.content), read_only=True)
    only_file = [tuple(r) for r in book["In the file only"].iter_rows(values_only=True)]
    assert only_file == [("row", "identifier", "authority"), (5, "P0005", "HIS")]
    again = client.post(
        f"{uploaded.url}/confirm", data={"csrf_token": _csrf(page.text)}, follow_redirects=True
    )  # type: ignore[attr-defined]
    assert "already confirmed" in again.text


@pytest.mark.parametrize(
    ("language", "words"),
    [("zh-CN", ["导入", "无效的电话号码"]), ("vi", ["Nhập dữ liệu", "số điện thoại không hợp lệ"])],
)
def test_the_pages_in_chinese_and_vietnamese(
    db: Session, client: TestClient, language: str, words: list[str]
) -> None:
    _sign_in(db, client, language=language)
    uploaded = _upload(client, csv_bytes(PATIENT_HEADERS_ZH, BAD))
    runs.wait_for_background()
    page = client.get(uploaded.url)  # type: ignore[attr-defined]
    for word in words:
        assert word in page.text


def test_other_roles_are_refused_and_bad_uploads_are_clear(
    db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    factories.staff(db, username="nurse1")
    db.commit()
    assert sign_in(client, "nurse1").status_code == 303
    assert client.get("/staff/imports").status_code == 403
    client.post("/staff/logout", data={"csrf_token": ""})
    client.cookies.clear()
    _sign_in(db, client)
    empty = _upload(client, b"")
    assert empty.status_code == 400 and "The file is empty." in empty.text  # type: ignore[attr-defined]
    no_source = _upload(client, csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH), source=" ")
    assert no_source.status_code == 400  # type: ignore[attr-defined]
    monkeypatch.setenv("CARELOOP_IMPORT_MAX_BYTES", "1024")
    reset_caches()
    big = _upload(client, csv_bytes(PATIENT_HEADERS_ZH, PATIENTS_ZH * 50))
    assert big.status_code == 413  # type: ignore[attr-defined]
    junk = _upload(client, bytes(range(256)) * 2)
    runs.wait_for_background()
    failed = client.get(junk.url)  # type: ignore[attr-defined]
    assert "this is not a CSV or Excel file" in failed.text


def test_the_command_runs_the_same_jobs_in_the_foreground(
    db: Session, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from backend.app.cli import main

    path = Path(str(tmp_path)) / "patients.csv"
    path.write_bytes(
        csv_bytes(["编号", "名字", "手机号"], [["P1", "王秀英", "13800138000"], ["P2", "李建国", "123"]])
    )
    assert main(["import", "patients", str(path), "--map", "identifier=编号", "--map", "name=名字"]) == 0
    out = capsys.readouterr().out
    assert (
        "to create: 1" in out and "row 3: invalid phone number · 手机号" in out and "nothing written" in out
    )
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0
    assert main(["import", "patients", str(path), "--confirm"]) == 0  # the mapping was saved for HIS
    out = capsys.readouterr().out
    assert "created: 1" in out and "reconciliation" in out
    assert db.scalars(sa.select(Patient.name)).all() == ["王秀英"]
    assert main(["import", "patients", str(path), "--confirm"]) == 0
    assert "not confirmed: nothing_to_apply" in capsys.readouterr().out


def test_columns_chosen_by_hand_run_the_dry_run_again_and_are_saved(db: Session, client: TestClient) -> None:
    from backend.models import ImportMapping

    _sign_in(db, client)
    data = csv_bytes(["编号", "名字", "联系方式"], [["P1", "王秀英", "13800138000"]])
    uploaded = _upload(client, data, source="LIS")
    runs.wait_for_background()
    failed = client.get(uploaded.url)  # type: ignore[attr-defined]
    assert "no column found for: identifier, name" in failed.text and 'id="choose-columns"' in failed.text
    assert '<option value="联系方式"' in failed.text
    fields = {"csrf_token": _csrf(failed.text), "column-identifier": "编号", "column-name": "名字",
              "column-phone": "联系方式"}  # fmt: skip
    again = client.post(f"{uploaded.url}/columns", data=fields)  # type: ignore[attr-defined]
    runs.wait_for_background()
    page = client.get(again.url)
    assert 'id="confirm"' in page.text and "联系方式" in page.text
    mapping = db.scalars(sa.select(ImportMapping).where(ImportMapping.source == "LIS")).one()
    assert mapping.columns == {"identifier": "编号", "name": "名字", "phone": "联系方式"}
    # the next file from the same source is read with them, nothing chosen
    next_file = _upload(
        client, csv_bytes(["编号", "名字", "联系方式"], [["P2", "李建国", "13912345678"]]), source="LIS"
    )
    runs.wait_for_background()
    assert 'id="confirm"' in client.get(next_file.url).text  # type: ignore[attr-defined]
