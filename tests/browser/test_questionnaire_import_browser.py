"""In Chromium: a content editor uploads a published LOINC PHQ-9 on /staff/studio/questionnaires/import,
reads the report (total recognised, zh-CN and vi missing, item-9 rule offered), accepts the rules and
sends it to review in the studio (where a colleague approves it); a file that is not a Questionnaire is
refused and publishes nothing. The pages pass axe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import ContentRevision, QuestionnaireVersion, RevisionState, Role
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in
from tests.questionnaires.published_forms import lhc_phq9

pytestmark = pytest.mark.browser


def test_an_editor_imports_a_published_phq9_with_its_rules(
    live_server: str, browser: Any, db: Session, tmp_path: Path
) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    db.commit()
    good = tmp_path / "phq9.json"
    good.write_text(json.dumps(lhc_phq9()), encoding="utf-8")
    bad = tmp_path / "patient.json"
    bad.write_text(json.dumps({"resourceType": "Patient"}), encoding="utf-8")
    page = _sign_in(browser, live_server, "editor1")
    page.goto(f"{live_server}/staff/studio/questionnaires/import")
    axe.assert_no_serious_violations(page)

    page.get_by_label("FHIR Questionnaire file (JSON)").set_input_files(str(bad))
    page.get_by_label("Send it to review in the studio (a colleague approves and publishes it)").check()
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-error")).to_contain_text("expected a FHIR Questionnaire, got 'Patient'")

    page.get_by_label("FHIR Questionnaire file (JSON)").set_input_files(str(good))
    page.get_by_label("Language of the form when it names none").select_option("en")
    page.get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("44249_1_x v1")
    expect(page.locator("#missing-languages")).to_have_text("zh-CN, vi")
    expect(report).to_contain_text("became the CareLoop total /44261-6 of 9 items")
    expect(page.locator("tr[data-rule=self_harm_thoughts]")).to_contain_text("/44260-8 != LA6568-5")
    expect(page.locator("#preview table[data-lang=en]")).to_contain_text(
        "Thoughts that you would be better off"
    )
    axe.assert_no_serious_violations(page)
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) == 0

    page.get_by_label("FHIR Questionnaire file (JSON)").set_input_files(str(good))
    page.get_by_label("Language of the form when it names none").select_option("en")
    page.get_by_label("Accept CareLoop's clinical rules offered for a known instrument").check()
    page.get_by_label("Send it to review in the studio (a colleague approves and publishes it)").check()
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#drafted")).to_contain_text("Sent to review as revision 1")
    page.locator("#drafted").get_by_role("link", name="Open it in the studio").click()
    expect(page.locator("#revision-state")).to_have_text("In review")
    expect(page.locator("fieldset.qrule")).to_contain_text("self_harm_thoughts")
    axe.assert_no_serious_violations(page)
    page.context.close()

    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(QuestionnaireVersion)) == 0  # review first
    revision = db.scalars(sa.select(ContentRevision)).one()
    assert revision.state is RevisionState.IN_REVIEW
    assert [r["id"] for r in revision.body["rules"]] == ["self_harm_thoughts"]
