"""In Chromium: an editor changes a Vietnamese follow-up text, submits it, a colleague with the approver
grant approves and it is published, the diff shows the change, and the editor restores the earlier
revision in one click; every studio page passes axe."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content.catalogue import DIALOGUES, current_catalog
from backend.content.texts import KIND
from backend.models import RevisionState, Role
from tests import factories
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser
NEW_VI = "Mời bạn cho chúng tôi biết sức khỏe của bạn: {title}. Chỉ mất vài phút."


def test_edit_submit_approve_publish_diff_and_rollback(live_server: str, browser: Any, db: Session) -> None:
    factories.staff(db, username="editor1", role=Role.CONTENT_EDITOR)
    factories.staff(db, username="approver1", role=Role.CONTENT_EDITOR).content_approver = True
    db.commit()

    editor = _sign_in(browser, live_server, "editor1")
    editor.get_by_role("link", name="Content studio").click()
    expect(editor.get_by_role("heading", name="Content studio", exact=True)).to_be_visible()
    axe.assert_no_serious_violations(editor)
    editor.get_by_role("button", name="Import the message files").click()
    expect(editor.locator("#published-number")).to_have_text("1")
    editor.get_by_role("button", name="New draft").click()

    editor.get_by_label("Key or text").fill("followup.invite")
    editor.get_by_role("button", name="Filter").click()
    expect(editor.locator("#texts tbody tr")).to_have_count(1)
    axe.assert_no_serious_violations(editor)
    editor.get_by_label("followup.invite (vi)").fill(NEW_VI)
    editor.get_by_label("What changed (changelog)").fill("friendlier Vietnamese invitation")
    editor.get_by_role("button", name="Save draft").click()
    expect(editor.get_by_label("followup.invite (vi)")).to_have_value(NEW_VI)
    expect(editor.locator("#counts")).to_contain_text("Changed from the published revision: 1")
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator("#revision-state")).to_have_text("In review")
    expect(editor.locator("#approval-hint")).to_be_visible()  # the author cannot approve her own

    colleague = _sign_in(browser, live_server, "approver1")
    colleague.goto(f"{live_server}/staff/studio")
    colleague.locator("#awaiting").get_by_role("link").click()
    axe.assert_no_serious_violations(colleague)
    colleague.get_by_role("button", name="Approve and publish").click()
    expect(colleague.locator("#revision-state")).to_have_text("Published")

    db.expire_all()
    assert current_catalog(db).text("vi", "followup.invite", title="X").startswith("Mời bạn")

    editor.goto(f"{live_server}/staff/studio/items/{KIND}/{DIALOGUES}")
    expect(editor.locator("#published-number")).to_have_text("2")
    axe.assert_no_serious_violations(editor)  # the history, compare and clinical-review forms
    editor.get_by_role("button", name="Compare").click()  # from 1 to 2 by default
    diff = editor.locator("#diff")
    expect(diff.locator("tbody tr")).to_have_count(1)
    expect(diff).to_contain_text(NEW_VI)
    axe.assert_no_serious_violations(editor)

    editor.go_back()
    editor.get_by_role("button", name="Restore revision 1").click()  # one click
    expect(editor.locator("#revision-state")).to_have_text("Published")
    expect(editor.get_by_role("heading", level=1)).to_contain_text("revision 3")
    db.expire_all()
    item = rv.get_item(db, KIND, DIALOGUES)
    assert item.published_number == 3
    assert rv.get_revision(db, item, 3).body == rv.get_revision(db, item, 1).body
    assert rv.get_revision(db, item, 2).state is RevisionState.SUPERSEDED
    assert not current_catalog(db).text("vi", "followup.invite", title="X").startswith("Mời bạn")
    editor.context.close()
    colleague.context.close()
