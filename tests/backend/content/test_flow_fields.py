"""Every field of a step through the editor's form: the text fields read and written both ways, a whole
step's form replacing every field it shows (an emptied one removes it), what was typed wrong reaching the
loader's validation by name, and a step moved up or down."""

from __future__ import annotations

from typing import Any

import pytest

from backend.content import flow_fields as f
from backend.content.flow_form import body_from_form, outline
from backend.content.flows import validate


def flow() -> dict[str, Any]:
    return {
        "id": "demo",
        "version": 1,
        "start": "ask",
        "steps": {
            "ask": {
                "say": "a.ask",
                "reprompt": "a.retry",
                "store": "answer",
                "choices": [
                    {
                        "id": "yes",
                        "label": "a.yes",
                        "next": "bye",
                        "intents": ["affirm"],
                        "effects": [{"handoff": {}}],
                    },
                    {"id": "no", "label": "a.no", "next": "bye"},
                ],
            },
            "bye": {
                "say": "a.bye",
                "end": True,
                "effects": [
                    {"grant_consent": {"purpose": "care"}},
                    {"handoff": {"reason": "asked_for_human"}},
                ],
                "set": {"kind": "complaint", "count": 2, "ok": True},
                "forget": ["answer", "kind"],
            },
        },
    }


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ([{"grant_consent": {"purpose": "$purpose"}}], "grant_consent purpose=$purpose"),
        ([{"handoff": {}}, {"set_language": {"lang": "zh-CN"}}], "handoff\nset_language lang=zh-CN"),
        ([{"submit_feedback": None}], "submit_feedback"),
        ([], ""),
        (None, ""),
    ],
)
def test_effects_read_and_written(raw: Any, text: str) -> None:
    assert f.effects_text(raw) == text
    if raw:
        assert f.effects_from(text) == [{k: dict(v or {}) for k, v in e.items()} for e in raw]


def test_effect_lines_the_form_cannot_split_are_kept_for_the_loader_to_name() -> None:
    assert f.effects_from("set_language vi\n\n  handoff  ") == [{"set_language": "vi"}, {"handoff": {}}]
    assert f.effects_from("grant_consent =care") == [{"grant_consent": "=care"}]


def test_slots_and_words() -> None:
    assert f.set_from("a = 1\nb = true\n c = yes \n d = -3") == {"a": 1, "b": True, "c": "yes", "d": -3}
    assert f.set_text({"a": 1, "b": True, "c": "yes"}) == "a = 1\nb = true\nc = yes"
    assert f.set_from("a = 1\nnot a pair") == "a = 1\nnot a pair"  # the loader says set_shape
    assert f.set_from("  \n") == {}
    assert f.words_from("a, b  c,,d") == ["a", "b", "c", "d"] and f.words_text(["a", "b"]) == "a, b"
    assert f.words_text("x") == "" and f.set_text(None) == ""


def step_form(body: dict[str, Any], n: int) -> dict[str, str]:
    """The form the editor's page shows for step n, as the browser would post it unchanged."""
    view = outline(body, lambda k: k, [])[n]
    p = f"s|{n}"
    form = {
        f"{p}|id": view.id, f"{p}|kind": view.kind, f"{p}|all": "1",
        f"{p}|say": str(view.step.get("say") or ""), f"{p}|reprompt": str(view.step.get("reprompt") or ""),
        f"{p}|next": str(view.step.get("next") or ""), f"{p}|outcomes": view.outcomes_text(),
        f"{p}|store": str(view.step.get("store") or ""), f"{p}|effects": view.effects_text(),
        f"{p}|set": view.set_text(), f"{p}|forget": view.forget_text(),
        f"{p}|max_length": str(view.step.get("max_length") or ""),
        f"{p}|choices_from": str(view.step.get("choices_from") or ""),
        f"{p}|empty": str(view.step.get("empty") or ""),
    }  # fmt: skip
    if view.step.get("end"):
        form[f"{p}|end"] = "1"
    if view.step.get("optional"):
        form[f"{p}|optional"] = "1"
    for m, c in enumerate(
        [*view.choices, {"id": "", "label": "", "next": "", "flow": "", "intents": "", "effects": ""}]
    ):
        for name in ("id", "label", "next", "flow", "intents", "effects"):
            form[f"{p}|c{m}|{name}"] = c[name]
        form[f"{p}|c{m}|orig"] = c["id"]
    return form


def test_every_step_round_trips_through_its_whole_form_unchanged() -> None:
    body = flow()
    for n in range(2):
        assert body_from_form(body, step_form(body, n)) == body


def test_editing_effects_set_forget_and_a_choices_intents() -> None:
    body = flow()
    form = step_form(body, 1)
    form["s|1|effects"] = "revoke_consent purpose=marketing"
    form["s|1|set"] = ""
    form["s|1|forget"] = "answer"
    bye = body_from_form(body, form)["steps"]["bye"]
    assert bye["effects"] == [{"revoke_consent": {"purpose": "marketing"}}]
    assert "set" not in bye and bye["forget"] == ["answer"]
    form = step_form(body, 0)
    form["s|0|c0|intents"] = "book, goodbye"
    form["s|0|c0|effects"] = "handoff reason=x; set_language lang=vi"
    form["s|0|store"] = ""
    ask = body_from_form(body, form)["steps"]["ask"]
    assert ask["choices"][0]["intents"] == ["book", "goodbye"]
    assert ask["choices"][0]["effects"] == [{"handoff": {"reason": "x"}}, {"set_language": {"lang": "vi"}}]
    assert "store" not in ask


def test_what_is_typed_wrong_is_named_by_the_loader_and_nothing_typed_is_lost() -> None:
    body = flow()
    form = step_form(body, 1)
    form["s|1|effects"] = "hug\nset_language vi"
    form["s|1|set"] = "mood"
    edited = body_from_form(body, form)
    assert {(p.where, p.code) for p in validate(edited)} == {("bye", "set_shape")}
    # the set line is kept as typed and shown again in the form
    assert edited["steps"]["bye"]["set"] == "mood"
    assert outline(edited, lambda k: k, [])[1].set_text() == "mood"
    form["s|1|set"] = "mood = calm"
    edited = body_from_form(body, form)
    assert {(p.where, p.code, p.detail) for p in validate(edited)} == {("bye", "unknown_effect", "hug")}


def test_the_short_form_keeps_every_field_it_does_not_show() -> None:
    body = flow()
    form = {"s|1|id": "bye", "s|1|kind": "say", "s|1|say": "a.bye", "s|1|end": "1"}
    assert body_from_form(body, form) == body


def test_a_step_moves_up_and_down_and_stays_at_the_ends() -> None:
    body = flow()
    body["steps"]["extra"] = {"say": "a.bye", "end": True}
    up = body_from_form(body, {**step_form(body, 1), "s|1|move": "up"})
    assert list(up["steps"]) == ["bye", "ask", "extra"] and up["start"] == "ask"
    down = body_from_form(body, {**step_form(body, 1), "s|1|move": "down"})
    assert list(down["steps"]) == ["ask", "extra", "bye"]
    top = body_from_form(body, {**step_form(body, 0), "s|0|move": "up"})
    assert list(top["steps"]) == ["ask", "bye", "extra"]
