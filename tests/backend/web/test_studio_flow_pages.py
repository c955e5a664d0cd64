"""The flow editor through the app: every shipped flow survives a save of its form unchanged; an edit of a
choice's next step to a missing step is named at its step on save and by the live check, and blocks a
submit; renaming a step renames the ways to it; drop-off of real conversations shows on the graph."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import seed_site
from backend.content.flows import KIND
from backend.models import ConversationStep, RevisionState, Role
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


class _Form(HTMLParser):
    """The fields a browser would post from the page's #flow-form, as it shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.fields, self._area, self._select = False, {}, None, None  # type: ignore[var-annotated]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == "flow-form"
        if not self.inside or not a.get("name"):
            if tag == "option" and self._select and "selected" in a:
                self.fields[self._select] = a.get("value") or ""
            return
        name = str(a["name"])
        if tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.fields[name] = a.get("value") or "on"
        elif tag == "input":
            self.fields[name] = a.get("value") or ""
        elif tag == "textarea":
            self._area = name
            self.fields[name] = ""
        elif tag == "select":
            self._select = name
            self.fields.setdefault(name, "")

    def handle_data(self, data: str) -> None:
        if self._area:
            self.fields[self._area] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._area = None
        if tag == "select":
            self._select = None
        if tag == "form":
            self.inside = False


def fields(page: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(page)
    return parser.fields


def _editor(client: TestClient, db: Session, username: str = "editor") -> str:
    factories.staff(db, username=username, role=Role.CONTENT_EDITOR)
    seed_site(db, get_settings().content_dir)
    db.commit()
    assert sign_in(client, username).status_code == 303
    return _csrf(client.get("/staff/studio").text)


def _draft(client: TestClient, csrf: str, key: str) -> tuple[str, dict[str, str]]:
    base = f"/staff/studio/items/{KIND}/{key}"
    made = client.post(f"{base}/draft", data={"csrf_token": csrf}, follow_redirects=False)
    url = made.headers["location"]
    page = client.get(url)
    assert page.status_code == 200, page.text[:500]
    return url, fields(page.text)


@pytest.mark.parametrize("key", ["main_menu", "booking", "registration", "welcome", "surveys"])
def test_saving_a_flows_form_unchanged_keeps_its_body(client: TestClient, db: Session, key: str) -> None:
    csrf = _editor(client, db)
    url, form = _draft(client, csrf, key)
    assert client.post(f"{url}/save", data=form, follow_redirects=False).status_code == 303
    db.expire_all()
    item = rv.get_item(db, KIND, key)
    revisions = rv.revisions(db, item)
    assert revisions[0].body == revisions[1].body and revisions[0].version == 2


def test_a_dangling_choice_is_named_at_its_step_and_blocks_a_submit(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url, form = _draft(client, csrf, "welcome")
    yes = next(k for k, v in form.items() if k.endswith("|id") and v == "yes")
    form[yes.replace("|id", "|next")] = "thanks_nowhere"
    live = client.post(f"{url}/check", data=form).json()
    said = "goes to a step that does not exist: choice yes → thanks_nowhere"
    assert {"step": "consent", "text": said} in live["problems"]
    client.post(f"{url}/save", data=form)
    page = client.get(url).text
    assert 'id="step-consent"' in page and "choice yes → thanks_nowhere" in page
    assert "no step leads here" in page  # thanks_granted is now reached by nothing
    submitted = client.post(f"{url}/submit", data={"csrf_token": csrf}, follow_redirects=False)
    assert "error=content_invalid" in submitted.headers["location"]
    db.expire_all()
    revision = rv.get_revision(db, rv.get_item(db, KIND, "welcome"), 2)
    assert revision.state is RevisionState.DRAFT  # nothing went to review


def test_renaming_a_step_renames_the_ways_to_it(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url, form = _draft(client, csrf, "welcome")
    step = next(k for k, v in form.items() if re.fullmatch(r"s\|\d+\|id", k) and v == "thanks_granted")
    form[step] = "thanked"
    client.post(f"{url}/save", data=form)
    db.expire_all()
    body = rv.revisions(db, rv.get_item(db, KIND, "welcome"))[0].body
    assert "thanked" in body["steps"] and "thanks_granted" not in body["steps"]
    assert body["steps"]["consent"]["choices"][0]["next"] == "thanked"
    assert "No problems" in client.get(url).text


def test_an_added_step_and_a_removed_choice(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url, form = _draft(client, csrf, "welcome")
    n = max(int(m.group(1)) for k in form if (m := re.fullmatch(r"s\|(\d+)\|id", k)))
    assert form[f"s|{n}|id"] == ""  # the empty block that adds one
    form.update({f"s|{n}|id": "extra", f"s|{n}|say": "welcome.greeting", f"s|{n}|end": "1"})
    no = next(k for k, v in form.items() if k.endswith("|id") and v == "no")
    form[no.replace("|id", "|remove")] = "1"
    client.post(f"{url}/save", data=form)
    db.expire_all()
    body = rv.revisions(db, rv.get_item(db, KIND, "welcome"))[0].body
    assert body["steps"]["extra"] == {"say": "welcome.greeting", "end": True}
    assert [c["id"] for c in body["steps"]["consent"]["choices"]] == ["yes"]
    page = client.get(url).text
    assert "no step leads here" in page  # extra and thanks_declined: nothing goes there


def test_the_graph_shows_drop_off_from_real_conversations(client: TestClient, db: Session) -> None:
    _editor(client, db)
    person = factories.patient(db, language="en", dept=factories.department(db))
    conv = factories.conversation(db, person)
    for step in ("greet", "consent"):
        db.add(ConversationStep(conversation_id=conv.id, flow_id="welcome", flow_version=1, step=step))
    db.commit()
    page = client.get(f"/staff/studio/items/{KIND}/welcome/r/1").text
    assert 'id="flow-graph"' in page and 'data-from="consent" data-to="thanks_granted"' in page
    assert re.search(r'data-step="consent".*?class="drop">100%<', page, re.S)
    assert db.scalar(sa.select(sa.func.count()).select_from(ConversationStep)) == 2
    preview = client.get("/staff/flows/simulate?flow=welcome&revision=1&lang=en")
    assert 'id="sim-drafts"' in preview.text and "Hello, this is the follow-up service" in preview.text
