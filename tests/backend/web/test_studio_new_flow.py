"""A dialogue flow made from nothing in the studio and reached by patients: started with its words in three
languages (they go into the texts' draft), an effect edited in its form, its problems said in the editor's
language, refused names leaving nothing behind, and, once the texts, the flow and a main-menu choice that
runs it are published, a patient at the menu picks it and reads its words."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.content import revisions as rv
from backend.content.catalogue import DIALOGUES
from backend.content.flows import KIND
from backend.content.texts import KIND as TEXTS
from backend.models import ContentItem, ContentRevision, Role, StaffUser
from tests import factories
from tests.backend.dialogue.webchat_driver import at_the_menu
from tests.backend.web.test_studio_flow_pages import _editor, forms, step_form

WORDS = {
    "zh-CN": "探视时间为下午两点到八点。",
    "vi": "Giờ thăm từ 2 đến 8 giờ chiều.",
    "en": "Visiting is 2 to 8 pm.",
}


def _new(client: TestClient, csrf: str, **fields: str) -> str:
    made = client.post(
        "/staff/studio/items/flows/new", data={"csrf_token": csrf, **fields}, follow_redirects=False
    )
    assert made.status_code == 303
    return str(made.headers["location"])


def _staff(db: Session, username: str) -> StaffUser:
    found = db.scalar(sa.select(StaffUser).where(StaffUser.username == username))
    assert found is not None
    return found


def _publish(db: Session, kind: str, key: str, number: int) -> None:
    item = rv.get_item(db, kind, key)
    colleague = factories.staff(db, username=f"colleague_{kind}_{number}", role=Role.CONTENT_EDITOR)
    rv.do_submit(db, item, number, _staff(db, "editor"))
    rv.do_approve(db, item, number, colleague)
    db.commit()


def test_a_new_flow_is_made_edited_published_and_reached_from_the_main_menu(
    client: TestClient, db: Session
) -> None:
    csrf = _editor(client, db)
    texts = {f"text_{lang}": words for lang, words in WORDS.items()}
    url = _new(client, csrf, flow_id="visiting", first_step="hours", **texts)
    assert url == "/staff/studio/items/flows/visiting/r/1"
    db.expire_all()
    draft = rv.get_revision(db, rv.get_item(db, KIND, "visiting"), 1)
    assert draft.body == {
        "id": "visiting",
        "version": 1,
        "start": "hours",
        "steps": {"hours": {"say": "visiting.hours", "end": True}},
    }
    texts_item = rv.get_item(db, TEXTS, DIALOGUES)
    texts_draft = rv.revisions(db, texts_item)[0]
    assert {lang: texts_draft.body[lang]["visiting.hours"] for lang in WORDS} == WORDS
    page = client.get(url).text
    assert "no published text has this key" in page  # until the texts are published

    # an effect edited in the step's form: an unknown one is named, then a real one is kept
    form = step_form(page, "hours")
    assert form["s|0|effects"] == "" and form["s|0|all"] == "1"
    live = client.post(f"{url}/check", data={**form, "s|0|effects": "hug"}).json()
    assert {"step": "hours", "text": "there is no effect of this name: hug"} in live["problems"]
    client.post(f"{url}/save", data={**form, "s|0|effects": "set_language lang=$lang"})
    db.expire_all()
    assert rv.get_revision(db, rv.get_item(db, KIND, "visiting"), 1).body["steps"]["hours"]["effects"] == [
        {"set_language": {"lang": "$lang"}}
    ]
    form = step_form(client.get(url).text, "hours")
    assert form["s|0|effects"] == "set_language lang=$lang"
    client.post(f"{url}/save", data={**form, "s|0|effects": ""})

    # publish the texts, then the flow; then a main-menu choice that runs it
    _publish(db, TEXTS, DIALOGUES, texts_draft.number)
    assert "No problems" in client.get(url).text
    _publish(db, KIND, "visiting", 1)
    menu_url = client.post(
        f"/staff/studio/items/{KIND}/main_menu/draft", data={"csrf_token": csrf}, follow_redirects=False
    ).headers["location"]
    form = step_form(client.get(menu_url).text, "menu")
    empty = next(k for k, v in form.items() if k.endswith("|id") and k.count("|") == 3 and v == "")
    row = empty.rsplit("|", 1)[0]
    form.update(
        {
            f"{row}|id": "visit",
            f"{row}|label": "menu.faq",
            f"{row}|flow": "visiting",
            f"{row}|next": "menu",
            f"{row}|intents": "faq_visiting_hours",
        }
    )
    live = client.post(f"{menu_url}/check", data=form).json()
    assert live["count"] == 0  # the intent is known; the flow exists
    client.post(f"{menu_url}/save", data={**form, f"{row}|intents": ""})
    number = int(menu_url.rsplit("/", 1)[1])
    _publish(db, KIND, "main_menu", number)

    _patient, chat = at_the_menu(client, db, "vi")
    chat.say(choice="visit")
    assert WORDS["vi"] in chat.text()


def test_a_menu_choice_running_a_flow_that_does_not_exist_is_named(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url = client.post(
        f"/staff/studio/items/{KIND}/main_menu/draft", data={"csrf_token": csrf}, follow_redirects=False
    ).headers["location"]
    form = step_form(client.get(url).text, "menu")
    first = next(k for k, v in form.items() if k.endswith("|id") and v == "register").rsplit("|", 1)[0]
    live = client.post(
        f"{url}/check", data={**form, f"{first}|flow": "nowhere", f"{first}|intents": "dance"}
    ).json()
    said = {p["text"] for p in live["problems"]}
    assert "no flow has this name: nowhere" in said
    assert "the language understanding knows no intent of this name: dance" in said


def test_refused_names_leave_nothing_behind(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    before = db.scalar(sa.select(sa.func.count()).select_from(ContentRevision))
    for fields, reason in [
        ({"flow_id": "Bad Name", "say": "menu.faq"}, "flow_id"),
        ({"flow_id": "new", "say": "menu.faq"}, "flow_id"),
        ({"flow_id": "ok", "first_step": "no spaces", "say": "menu.faq"}, "step_name"),
        ({"flow_id": "booking", "say": "menu.faq"}, "flow_exists"),  # a flow of the files
        ({"flow_id": "main_menu", "text_en": "Hi"}, "flow_exists"),  # a flow of the studio
        ({"flow_id": "ok"}, "first_text"),
        ({"flow_id": "ok", "text_vi": "x" * 2001}, "text_length"),
    ]:
        assert _new(client, csrf, **fields) == f"/staff/studio?error={reason}#new-flow"
        page = client.get(f"/staff/studio?error={reason}").text
        assert 'id="studio-error"' in page and f">{reason}<" not in page  # said in words
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(ContentRevision)) == before
    assert db.scalar(sa.select(ContentItem).where(ContentItem.key == "ok")) is None
    # an existing text key: no texts draft is made
    assert _new(client, csrf, flow_id="ok", say="menu.faq").endswith("/ok/r/1")
    assert 'id="new-flow"' in client.get("/staff/studio").text
    assert forms(client.get("/staff/studio/items/flows/ok/r/1").text)


def test_problems_are_said_in_the_editors_language(client: TestClient, db: Session) -> None:
    csrf = _editor(client, db)
    url = _new(client, csrf, flow_id="visiting", say="menu.faq")
    editor = _staff(db, "editor")
    editor.language = "zh-CN"
    db.commit()
    form = step_form(client.get(url).text, "start")
    live = client.post(f"{url}/check", data={**form, "s|0|effects": "hug", "s|0|set": "mood"}).json()
    assert {"step": "start", "text": "要设置的槽位每行一个：槽位 = 值"} in live["problems"]
    client.post(f"{url}/save", data={**form, "s|0|effects": "hug"})
    page = client.get(url).text
    assert "没有这个名称的效果" in page and "there is no effect" not in page


def test_a_long_flow_is_paged_with_an_index_of_every_step_and_its_graph_follows_each_save(
    client: TestClient, db: Session
) -> None:
    csrf = _editor(client, db)
    url = _new(client, csrf, flow_id="long", first_step="s0", say="menu.faq")
    item = rv.get_item(db, KIND, "long")
    steps = {f"s{i}": {"say": "menu.faq", "next": f"s{i + 1}"} for i in range(44)}
    steps["s44"] = {"say": "menu.faq", "end": True}
    rv.do_save_draft(
        db,
        item,
        1,
        _staff(db, "editor"),
        version=1,
        body={"id": "long", "version": 1, "start": "s0", "steps": steps},
    )
    db.commit()
    first = client.get(url).text
    assert 'id="step-s39"' in first and 'id="step-s40"' not in first  # 40 a page
    assert 'href="?page=2#step-s44"' in first  # the index reaches every step
    assert 'data-from="s43" data-to="s44"' in first  # the graph shows all of them
    second = client.get(f"{url}?page=2").text
    assert 'id="step-s40"' in second and 'id="step-s0"' not in second
    assert client.get(f"{url}?page=99").text.count('class="flow-step') == 5 + 1  # the last page, and "add"
    form = step_form(second, "s43")
    assert form["page"] == "2"
    saved = client.post(f"{url}/save", data={**form, "s|43|next": "s0"}, follow_redirects=False)
    assert saved.headers["location"].endswith("?saved=1&page=2#check-title")
    after = client.get(f"{url}?page=2").text
    assert 'data-from="s43" data-to="s0"' in after and 'data-from="s43" data-to="s44"' not in after
    assert "no step leads here" in after  # s44
