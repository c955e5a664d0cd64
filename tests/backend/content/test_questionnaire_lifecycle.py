"""A questionnaire through the one revision lifecycle, on SQLite and PostgreSQL: an invalid draft cannot be
submitted, a second person approves, publishing stores the next frozen version that plans send, responses
keep the version they were started on, rollback publishes an earlier body as a new version, and retiring
is refused. FHIR imports arrive as drafts in review and publish nothing by themselves."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content.questionnaire import KIND
from backend.followup.catalog import definition_of, do_publish, latest_version
from backend.followup.fhir_intake import do_draft_import, import_file
from backend.followup.responses import do_start_response
from backend.models import AuditEvent, QuestionnaireVersion, RevisionState, Role, StaffUser
from backend.services.refusal import ActionRefused, Reason
from bots.domain import Channel
from tests import factories
from tests.backend.followup.test_followup import DEFINITION
from tests.questionnaires.published_forms import lhc_phq9


def _people(db: Session) -> tuple[StaffUser, StaffUser]:
    author = factories.staff(db, username="author", role=Role.CONTENT_EDITOR)
    approver = factories.staff(db, username="approver", role=Role.CONTENT_EDITOR)
    approver.content_approver = True
    return author, approver


def _versions(db: Session, qid: str = "recovery") -> list[tuple[int, str]]:
    rows = db.scalars(
        sa.select(QuestionnaireVersion)
        .where(QuestionnaireVersion.questionnaire_id == qid)
        .order_by(QuestionnaireVersion.version)
    )
    return [(r.version, r.definition["items"][0]["text"]["en"]) for r in rows]


def _with_pain_text(text: str) -> dict[str, Any]:
    body = copy.deepcopy(DEFINITION)
    body["items"][0]["text"]["en"] = text
    return body


def test_a_questionnaire_goes_through_review_and_responses_keep_their_version(db: Session) -> None:
    author, approver = _people(db)
    item = rv.get_item(db, KIND, "recovery", create=True)
    broken = copy.deepcopy(DEFINITION)
    broken["items"][1]["options"] = broken["items"][1]["options"][:1]
    draft = rv.do_start_draft(db, item, author, body=broken)
    with pytest.raises(rv.ContentInvalid) as invalid:
        rv.do_submit(db, item, draft.number, author)
    assert [p.where for p in invalid.value.problems] == ["fever"]
    assert draft.state is RevisionState.DRAFT and _versions(db) == []  # nothing went anywhere

    rv.do_save_draft(db, item, draft.number, author, version=draft.version, body=DEFINITION)
    rv.do_submit(db, item, draft.number, author)
    with pytest.raises(ActionRefused) as own:
        rv.do_approve(db, item, draft.number, author)
    assert own.value.reason == Reason.OWN_REVISION
    # rules make it clinical: an editor without the grant may not approve it either
    colleague = factories.staff(db, username="colleague", role=Role.CONTENT_EDITOR)
    assert rv.may_approve(db, item, draft, colleague) == Reason.NOT_AN_APPROVER
    rv.do_approve(db, item, draft.number, approver)
    db.commit()
    assert _versions(db) == [(1, "Pain today?")]
    first = latest_version(db, "recovery")
    assert first is not None and definition_of(first).items[0].text["en"] == "Pain today?"

    patient = factories.patient(db, dept=factories.department(db))
    response = do_start_response(
        db, version=first, patient_id=patient.id, channel=Channel.WEBCHAT, language="en"
    )
    db.commit()

    second = rv.do_start_draft(db, item, author)  # a copy of the published body
    rv.do_save_draft(
        db, item, second.number, author, version=second.version, body=_with_pain_text("Pain now?")
    )
    rv.do_submit(db, item, second.number, author)
    rv.do_approve(db, item, second.number, approver)
    db.commit()
    assert _versions(db) == [(1, "Pain today?"), (2, "Pain now?")]
    db.refresh(response)
    assert response.version_id == first.id  # answered on version 1, scored on version 1

    back = rv.do_rollback(db, item, draft.number, approver)
    db.commit()
    assert back.state is RevisionState.PUBLISHED and item.published_number == back.number
    assert _versions(db) == [(1, "Pain today?"), (2, "Pain now?"), (3, "Pain today?")]
    assert rv.get_revision(db, item, second.number).state is RevisionState.SUPERSEDED

    with pytest.raises(ActionRefused) as retire:
        rv.do_retire(db, item, approver)
    assert retire.value.reason == Reason.NOT_RETIRABLE
    published = db.scalars(
        sa.select(AuditEvent.action).where(
            AuditEvent.action.in_(("content.published", "questionnaire.publish"))
        )
    ).all()
    assert sorted(published) == ["content.published"] * 3 + ["questionnaire.publish"] * 3


def test_a_questionnaire_from_the_files_is_edited_from_its_published_version(db: Session) -> None:
    author, approver = _people(db)
    do_publish(db, DEFINITION | {"version": 4})  # `careloop publish` from content/
    item = rv.get_item(db, KIND, "recovery", create=True)
    row = latest_version(db, "recovery")
    assert row is not None
    draft = rv.do_start_draft(db, item, author, body=row.definition)
    rv.do_save_draft(
        db, item, draft.number, author, version=draft.version, body=_with_pain_text("Pain?") | {"version": 4}
    )
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, approver)
    db.commit()
    assert _versions(db) == [(4, "Pain today?"), (5, "Pain?")]  # numbered after the files' version


def test_a_fhir_import_lands_in_review_and_publishes_only_when_a_colleague_approves(db: Session) -> None:
    author, approver = _people(db)
    imported = import_file(json.dumps(lhc_phq9()).encode(), language="en", accept_rules=True)
    drafted = do_draft_import(db, imported, author, submit=True)
    db.commit()
    assert drafted.new and drafted.revision.state is RevisionState.IN_REVIEW
    assert drafted.revision.source == "import"
    qid = drafted.item.key
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) == 0
    audit = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "questionnaire.import")).one()
    assert audit.detail["loinc"] == "44249-1" and audit.detail["number"] == drafted.revision.number

    again = do_draft_import(db, imported, author, submit=True)  # the same file twice: nothing added
    assert not again.new and again.revision.id == drafted.revision.id
    with pytest.raises(ActionRefused):
        rv.do_approve(db, drafted.item, drafted.revision.number, author)
    rv.do_approve(db, drafted.item, drafted.revision.number, approver)
    db.commit()
    row = latest_version(db, qid)
    assert row is not None and row.version == 1
    assert [r.id for r in definition_of(row).rules] == ["self_harm_thoughts"]


def test_a_system_import_is_a_draft_without_an_author(db: Session) -> None:
    imported = import_file(json.dumps(lhc_phq9()).encode(), language="en")
    drafted = do_draft_import(db, imported, None, submit=True)  # no user: submit is left to an editor
    assert drafted.revision.state is RevisionState.DRAFT and drafted.revision.author_id is None
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) == 0


def test_the_files_no_longer_publish_a_questionnaire_the_studio_edits(db: Session, tmp_path: Path) -> None:
    """`careloop run` publishes content/ at every start: a reviewed studio change must survive it."""
    from backend.followup.catalog import publish_all

    (tmp_path / "questionnaires").mkdir()
    (tmp_path / "questionnaires" / "recovery.yaml").write_text(yaml.safe_dump(DEFINITION), encoding="utf-8")
    author, approver = _people(db)
    assert [(r.questionnaire_id, r.version) for r in publish_all(db, tmp_path)] == [("recovery", 1)]
    item = rv.get_item(db, KIND, "recovery", create=True)
    draft = rv.do_start_draft(db, item, author, body=_with_pain_text("Pain now?"))
    rv.do_submit(db, item, draft.number, author)
    rv.do_approve(db, item, draft.number, approver)
    db.commit()
    assert [(r.questionnaire_id, r.version) for r in publish_all(db, tmp_path)] == [("recovery", 2)]
    assert _versions(db) == [(1, "Pain today?"), (2, "Pain now?")]  # the file did not come back as v3


def test_whoever_submits_a_system_import_cannot_approve_it(db: Session) -> None:
    _, approver = _people(db)
    imported = import_file(json.dumps(lhc_phq9()).encode(), language="en", accept_rules=True)
    drafted = do_draft_import(db, imported, None)
    rv.do_submit(db, drafted.item, drafted.revision.number, approver)
    assert drafted.revision.author_id == approver.id
    with pytest.raises(ActionRefused) as own:
        rv.do_approve(db, drafted.item, drafted.revision.number, approver)
    assert own.value.reason == Reason.OWN_REVISION
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) == 0
