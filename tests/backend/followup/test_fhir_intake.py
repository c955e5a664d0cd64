"""`careloop questionnaire import`: a published PHQ-9 is reported, added to the studio as a draft only
when asked (published only by a colleague's approval), with CareLoop's item-9 rule only when accepted; bad
files add nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.cli import main
from backend.content import revisions as rv
from backend.content.questionnaire import KIND
from backend.followup.catalog import definition_of
from backend.models import AuditEvent, QuestionnaireVersion, Role
from questionnaires.scoring import evaluate
from tests import factories
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
    assert "not added to the studio (use --draft)" in out
    assert _versions(db) == []


def test_a_draft_with_accepted_rules_is_published_by_review_and_flags_item_9(
    database_url: str, db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, lhc_phq9())
    assert main(["questionnaire", "import", path, "--language", "en", "--accept-rules", "--draft"]) == 0
    assert "44249_1_x revision 1: draft in the studio" in capsys.readouterr().out
    assert _versions(db) == []  # a file never reaches patients unreviewed
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "questionnaire.import")).one()
    assert audit.detail["loinc"] == "44249-1" and audit.detail["rules_accepted"] is True
    assert audit.detail["missing_languages"] == "zh-CN,vi"
    # the same file again: nothing new; the file without the rules: another draft
    assert main(["questionnaire", "import", path, "--language", "en", "--accept-rules", "--draft"]) == 0
    assert "44249_1_x revision 1: already draft in the studio" in capsys.readouterr().out
    assert main(["questionnaire", "import", path, "--language", "en", "--draft"]) == 0
    assert "44249_1_x revision 2: draft in the studio" in capsys.readouterr().out

    editor = factories.staff(db, username="editor", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    item = rv.get_item(db, KIND, "44249_1_x")
    rv.do_submit(db, item, 1, editor)
    rv.do_approve(db, item, 1, approver)
    db.commit()
    (row,) = _versions(db)
    q = definition_of(row)
    answers = {i.id: "LA6568-5" for i in q.answerable() if i.options[0].code == "LA6568-5"}
    answers["/44260-8"] = "LA6569-3"
    assert [f.code for f in evaluate(q, answers).findings] == ["self_harm_thoughts"]


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
    assert main(["questionnaire", "import", str(path), "--draft"]) == 2
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
