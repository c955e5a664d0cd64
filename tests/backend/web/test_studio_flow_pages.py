"""The flow editor through the app: every shipped flow survives a save of its form unchanged; an edit of a
choice's next step to a missing step is named at its step on save and by the live check, and blocks a
submit; renaming a step renames the ways to it; drop-off of real conversations shows on the graph."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import revisions as rv
from backend.content.bundle import seed_site
from backend.content.flows import KIND
from backend.models import ConversationStep, RevisionState, Role
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in


class _Forms(HTMLParser):
    """The fields a browser would post from each form of the page, by the form's id, as it shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self.fields: dict[str, str] | None = None
        self._area: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.fields = self.forms.setdefault(str(a.get("id") or len(self.forms)), {})
        if self.fields is None:
            return
        if tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value") or ""
        if not a.get("name"):
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
        if self._area and self.fields is not None:
            self.fields[self._area] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._area = None
        if tag == "select":
            self._select = None
        if tag == "form":
            self.fields = None


def forms(page: str) -> dict[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def step_form(page: str, step: str) -> dict[str, str]:
    """The form of the step named `step`."""
    found = re.search(rf'<form [^>]*id="(form-s\d+)" data-step="{re.escape(step)}"', page)
    assert found is not None, step
    return forms(page)[found.group(1)]


def _editor(client: TestClient, db: Session, username: str = "editor") -> str:
    factories.staff(db, username=username, role=Role.CONTENT_EDITOR)
    seed_site(db, get_settings().content_dir)
    db.commit()
    assert sign_in(client, username).status_code == 303
    return _csrf(client.get("/staff/studio").text)


def _draft(client: TestClient, csrf: str, key: str) -> str:
    base = f"/staff/studio/items/{KIND}/{key}"
    made = client.post(f"{base}/draft", data={"csrf_token": csrf}, follow_redirects=False)
    url = made.headers["location"]
    assert client.get(url).status_code == 200
    return str(url)


@pytest.mark.parametrize("key", ["main_menu", "booking", "registration", "welcome", "surveys"])
def test_saving_each_step_of_a_flow_unchanged_keeps_its_body(
    client: TestClient, db: Session, key: str
) -> None:
    csrf = _editor(client, db)
    url = _draft(client, csrf, key)
    page = client.get(url).text
    names = re.findall(r'<form [^>]*id="form-s\d+" data-step="([^"]+)"', page)
    assert len(names) == len(rv.published_revision(db, rv.get_item(db, KIND, key)).body["steps"])  # type: ignore[union-attr]
    for name in [*names, "flow-form"]:
        page = client.get(url).text
        form = forms(page)["flow-form"] if name == "flow-form" else step_form(page, name)
        assert client.post(f"{url}/save", data=form, follow_redirects=False).status_code == 303
    db.expire_all()
    revisions = rv.revisions(db, rv.get_item(db, KIND, key))
    assert revisions[0].body == revisions[1].body and revisions[0].version == len(names) + 2
    assert list(revisions[0].body["steps"]) == list(revisions[1].body["steps"])  # the authored order too
    as_file = client.get(f"{url}/flow.yaml")
    assert as_file.headers["content-type"].startswith("text/plain")
    assert yaml.safe_load(as_file.text) == revisions[0].body


def test_a_dangling_choice_is_named_at_its_step_and_blocks_a_submit(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url = _draft(client, csrf, "welcome")
    form = step_form(client.get(url).text, "consent")
    yes = next(k for k, v in form.items() if k.endswith("|id") and v == "yes")
    form[yes.replace("|id", "|next")] = "thanks_nowhere"
    live = client.post(f"{url}/check", data=form).json()
    said = "goes to a step that does not exist: choice yes → thanks_nowhere"
    assert {"step": "consent", "text": said} in live["problems"]
    client.post(f"{url}/save", data=form)
    page = client.get(url).text
    words = re.sub(r"<[^>]+>", "", page)  # the flow's names are marked as code in the page
    assert 'id="step-consent"' in page and "choice yes → thanks_nowhere" in words
    assert "no step leads here" in page  # thanks_granted is now reached by nothing
    submitted = client.post(f"{url}/submit", data={"csrf_token": csrf}, follow_redirects=False)
    assert "error=content_invalid" in submitted.headers["location"]
    db.expire_all()
    revision = rv.get_revision(db, rv.get_item(db, KIND, "welcome"), 2)
    assert revision.state is RevisionState.DRAFT  # nothing went to review


def test_renaming_a_step_renames_the_ways_to_it_but_never_over_another(
    client: TestClient, db: Session
) -> None:
    csrf = _editor(client, db)
    url = _draft(client, csrf, "welcome")
    form = step_form(client.get(url).text, "thanks_granted")
    step = next(k for k, v in form.items() if re.fullmatch(r"s\|\d+\|id", k))
    client.post(f"{url}/save", data={**form, step: "thanks_declined"})  # taken: nothing overwritten
    db.expire_all()
    body = rv.revisions(db, rv.get_item(db, KIND, "welcome"))[0].body
    assert body["steps"]["thanks_granted"]["say"] == "welcome.thanks_granted"
    assert body["steps"]["thanks_declined"]["say"] == "welcome.thanks_declined"
    form = step_form(client.get(url).text, "thanks_granted")
    client.post(f"{url}/save", data={**form, step: "thanked"})
    db.expire_all()
    body = rv.revisions(db, rv.get_item(db, KIND, "welcome"))[0].body
    assert list(body["steps"]) == ["greet", "consent", "thanked", "thanks_declined"]
    assert body["steps"]["consent"]["choices"][0]["next"] == "thanked"
    assert "No problems" in client.get(url).text


def test_an_added_step_and_a_removed_choice(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url = _draft(client, csrf, "welcome")
    form = forms(client.get(url).text)["new-step-form"]
    n = next(int(m.group(1)) for k in form if (m := re.fullmatch(r"s\|(\d+)\|id", k)))
    assert n == 4 and form[f"s|{n}|id"] == ""  # after the four steps
    form.update({f"s|{n}|id": "extra", f"s|{n}|say": "welcome.greeting", f"s|{n}|end": "1"})
    client.post(f"{url}/save", data=form)
    form = step_form(client.get(url).text, "consent")
    no = next(k for k, v in form.items() if k.endswith("|id") and v == "no")
    form[no.replace("|id", "|remove")] = "1"
    client.post(f"{url}/save", data=form)
    db.expire_all()
    revision = rv.revisions(db, rv.get_item(db, KIND, "welcome"))[0]
    body = revision.body
    assert body["steps"]["extra"] == {"say": "welcome.greeting", "end": True}
    assert [c["id"] for c in body["steps"]["consent"]["choices"]] == ["yes"]
    assert revision.changelog == ""  # a step's form leaves the changelog alone
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
