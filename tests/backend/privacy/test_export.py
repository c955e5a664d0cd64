"""The patient's data export as long work: a FHIR R4 Bundle that fhir.resources accepts and a PDF with
Chinese and Vietnamese text, sealed on disk, with progress on the job row."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy.orm import Session

from backend.models import Role, WorkJob, WorkState
from backend.privacy import export
from backend.work import runs
from tests import factories
from tests.backend.privacy.helpers import rich_patient


def test_the_export_job_writes_a_valid_bundle_and_a_pdf(db: Session) -> None:
    pytest.importorskip("weasyprint", reason="the PDF half needs WeasyPrint")
    rich = rich_patient(db)
    rich.patient.name = "王丽 Nguyễn Thị Hồng"
    officer = factories.staff(db, username="officer", role=Role.ADMIN)
    db.commit()
    job = runs.start(db, export.KIND, {"patient_id": rich.patient.id, "staff_id": officer.id}, officer.id)
    db.commit()
    runs.run_job(job.id)
    db.expire_all()
    job = db.get(WorkJob, job.id)
    assert job is not None and job.state is WorkState.DONE, job.failure
    assert job.percent == 100
    assert job.result is not None and job.result["counts"]["messages"] == 1
    assert job.result["counts"]["findings"] == 1 and job.result["counts"]["calls"] == 1
    data = export.load(job.id, "json")
    assert data is not None
    bundle = json.loads(data)
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)  # raises on anything R4 does not allow
    types = sorted({e["resource"]["resourceType"] for e in bundle["entry"]})
    assert types == [
        "Communication",
        "Consent",
        "Encounter",
        "Observation",
        "Patient",
        "QuestionnaireResponse",
        "Task",
    ]
    assert bundle["entry"][0]["resource"]["name"] == [{"text": "王丽 Nguyễn Thị Hồng"}]
    pdf = export.load(job.id, "pdf")
    assert pdf is not None and pdf.startswith(b"%PDF")
    # on disk only sealed: neither the name nor the PDF header is readable
    raw = (export._path(job.id, "pdf")).read_bytes()
    assert not raw.startswith(b"%PDF")
    assert "Nguyễn".encode() not in export._path(job.id, "json").read_bytes()


def test_the_pdf_text_holds_chinese_and_vietnamese(db: Session) -> None:
    pytest.importorskip("weasyprint", reason="the PDF half needs WeasyPrint")
    from backend.privacy.export_pdf import render_html, render_pdf

    rich = rich_patient(db)
    content = export.collect(db, rich.patient)
    html = render_html(content, name="王丽", language="vi")
    assert "Dữ liệu cá nhân" in html and "王丽" in html
    assert render_pdf(content, name="王丽", language="zh-CN").startswith(b"%PDF")
    # the same page uncompressed, to read which faces were embedded for its text
    from weasyprint import HTML

    raw = HTML(string=render_html(content, name="王丽 Nguyễn", language="zh-CN")).write_pdf(
        uncompressed_pdf=True
    )
    faces = {name.split(b"+")[-1] for name in re.findall(rb"/BaseFont\s*/([A-Za-z+\-]+)", raw)}
    assert {b"DejaVu-Sans", b"Noto-Sans-CJK-SC"} <= faces  # Vietnamese marks and Chinese both rendered


def test_an_export_asked_for_by_someone_who_may_no_longer_see_the_record_fails_cleanly(db: Session) -> None:
    rich = rich_patient(db)
    stranger = factories.staff(db, username="stranger", departments=[factories.department(db)])
    db.commit()
    job = runs.start(db, export.KIND, {"patient_id": rich.patient.id, "staff_id": stranger.id}, stranger.id)
    db.commit()
    runs.run_job(job.id)
    db.expire_all()
    job = db.get(WorkJob, job.id)
    assert job is not None and job.state is WorkState.FAILED
    assert job.failure == "the person who asked may no longer see this record"
    assert export.load(job.id, "json") is None


def test_without_weasyprint_the_bundle_is_still_written_and_the_missing_pdf_reported(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # an installation without the PDF library
    rich = rich_patient(db)
    officer = factories.staff(db, username="officer", role=Role.ADMIN)
    db.commit()
    job = runs.start(db, export.KIND, {"patient_id": rich.patient.id, "staff_id": officer.id}, officer.id)
    db.commit()
    runs.run_job(job.id)
    db.expire_all()
    job = db.get(WorkJob, job.id)
    assert job is not None and job.state is WorkState.DONE
    assert job.result is not None and job.result["files"] == ["json"]
    assert job.errors == [
        {"at": "pdf", "error": "PDF export needs WeasyPrint (pip install weasyprint) and Pango"}
    ]
    assert export.load(job.id, "json") is not None and not export.exists(job.id, "pdf")
