"""`careloop questionnaire import`: a published PHQ-9 is reported, published only when asked, with
CareLoop's item-9 rule only when accepted; bad files publish nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.cli import main
from backend.followup.catalog import definition_of
from backend.models import AuditEvent, QuestionnaireVersion
from questionnaires.scoring import evaluate
from tests.questionnaires.published_forms import lhc_phq9


def _file(tmp_path: Path, data: object, name: str = "phq9.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _versions(db: Session) -> list[QuestionnaireVersion]:
    db.expire_all()
    return list(db.scalars(sa.select(QuestionnaireVersion).order_by(QuestionnaireVersion.version)))


def test_import_prints_the_report_and_publishes_nothing_unless_asked(
    database_url: str, db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["questionnaire", "import", _file(tmp_path, lhc_phq9()), "--language", "en"]) == 0
    out = capsys.readouterr().out
    assert "Imported 44249_1_x v1" in out and "[urgent] self_harm_thoughts" in out
    assert "not published (use --publish)" in out
    assert _versions(db) == []


def test_published_with_accepted_rules_flags_item_9(
    database_url: str, db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, lhc_phq9())
    assert main(["questionnaire", "import", path, "--language", "en", "--accept-rules", "--publish"]) == 0
    assert "published 44249_1_x v1" in capsys.readouterr().out
    (row,) = _versions(db)
    q = definition_of(row)
    answers = {i.id: "LA6568-5" for i in q.answerable() if i.options[0].code == "LA6568-5"}
    answers["/44260-8"] = "LA6569-3"
    assert [f.code for f in evaluate(q, answers).findings] == ["self_harm_thoughts"]
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "questionnaire.import")).one()
    assert audit.detail["loinc"] == "44249-1" and audit.detail["rules_accepted"] is True
    assert audit.detail["missing_languages"] == "zh-CN,vi"
    # the same file again: nothing new; the file without the rules: the next version
    assert main(["questionnaire", "import", path, "--language", "en", "--accept-rules", "--publish"]) == 0
    assert [r.version for r in _versions(db)] == [1]
    assert main(["questionnaire", "import", path, "--language", "en", "--publish"]) == 0
    assert [r.version for r in _versions(db)] == [1, 2]
    assert definition_of(_versions(db)[1]).rules == ()


@pytest.mark.parametrize(
    ("content", "expected"),
    [({"resourceType": "Patient"}, "expected a FHIR Questionnaire"), ("x" * 64, "not JSON")],
)
def test_bad_files_are_refused_and_nothing_is_published(
    database_url: str,
    db: Session,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: object,
    expected: str,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    assert main(["questionnaire", "import", str(path), "--publish"]) == 2
    assert expected in capsys.readouterr().err
    assert _versions(db) == []


def test_an_oversized_file_is_refused(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.app.settings import get_settings

    monkeypatch.setenv("CARELOOP_FHIR_IMPORT_MAX_BYTES", "1000")
    get_settings.cache_clear()
    assert main(["questionnaire", "import", _file(tmp_path, lhc_phq9())]) == 2
    assert "the largest accepted is 1000 bytes" in capsys.readouterr().err
    get_settings.cache_clear()


def test_a_form_written_only_in_english_is_sent_in_english(db: Session) -> None:
    from backend.followup.catalog import do_publish
    from backend.followup.dispatcher import dispatch_due
    from backend.followup.planner import run_planner
    from backend.models import QuestionnaireResponse
    from tests.backend.followup.test_followup import DEFINITION, NOW, _setup

    patient, _, _ = _setup(db)
    patient.language = "vi"
    do_publish(db, DEFINITION | {"version": 2, "languages": ["en"]})
    run_planner(db, NOW)
    db.commit()
    assert dispatch_due(NOW) == {"sent:webchat": 1}
    db.expire_all()
    response = db.scalars(sa.select(QuestionnaireResponse)).one()
    assert response.language == "en"


def test_references_cover_every_known_instrument_and_phq2_is_not_published(
    database_url: str, db: Session
) -> None:
    from backend.app.settings import get_settings
    from backend.followup.catalog import publish_all
    from backend.followup.fhir_intake import references
    from questionnaires.fhir_instruments import INSTRUMENTS

    assert set(references()) == {i.reference for i in INSTRUMENTS.values()}
    published = {row.questionnaire_id for row in publish_all(db, get_settings().content_dir)}
    assert "phq9" in published and "phq2" not in published
