"""The flow validation an editor sees: every problem of the loader at once, each by its code, and what a
flow names that does not exist (an effect, an intent, an action, a list of choices, a sub-flow) or sets
and never reads. The same validation runs on a save, a submit and a publish; each code has words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.content.flows import Known, validate
from backend.dialogue.content import catalog_tables
from backend.dialogue.flow_ports import ACTIONS, CHOICE_SOURCES
from backend.web.studio_flow_words import problem_text
from bots.flows import ERROR_CODES, FlowError, flow_problems, parse_flow
from nlu.intents import known_intents

CONTENT = Path(__file__).resolve().parents[3] / "content"
TEXTS = {"a.ask": "Which?", "a.retry": "Again?", "a.yes": "Yes", "a.no": "No", "a.bye": "Bye {name}"}
KNOWN = Known(
    keys=set(TEXTS), texts=TEXTS, intents={"book", "goodbye"}, actions={"book_it"}, sources={"doctors"},
    flows={"demo", "booking"},
)  # fmt: skip


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
                    {"id": "yes", "label": "a.yes", "next": "bye", "intents": ["book"]},
                    {"id": "no", "label": "a.no", "next": "bye"},
                ],
            },
            "bye": {"say": "a.bye", "end": True},
        },
    }


def found(body: dict[str, Any], known: Known = KNOWN) -> list[tuple[str, str, str, bool]]:
    return [(p.where, p.code, p.detail, p.blocking) for p in validate(body, known=known)]


def test_a_valid_flow_has_no_problems_with_everything_known() -> None:
    body = flow()
    body["steps"]["bye"]["say"] = "a.bye"
    body["steps"]["branch"] = {"branch": "answer", "outcomes": {"yes": "bye"}, "next": "bye"}
    body["steps"]["ask"]["choices"][0]["next"] = "branch"
    assert found(body) == []


@pytest.mark.parametrize("path", sorted((CONTENT / "dialogues").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_flow_names_only_what_exists(path: Path) -> None:
    tables = catalog_tables(CONTENT)
    texts = {k: " ".join(t.get(k, "") for t in tables.values()) for t in tables.values() for k in t}
    flows = {p.stem for p in (CONTENT / "dialogues").glob("*.yaml")}
    known = Known(set(texts), texts, known_intents(), ACTIONS, CHOICE_SOURCES, flows)
    assert found(yaml.safe_load(path.read_text(encoding="utf-8")), known) == []


def test_every_loader_problem_is_found_in_one_pass_each_at_its_step() -> None:
    body = flow()
    body["steps"]["ask"].pop("reprompt")
    body["steps"]["bye"]["effects"] = [{"hug": {}}]
    body["steps"]["odd"] = {
        "input": "colour",
        "next": "bye",
        "store": "c",
        "say": "a.ask",
        "reprompt": "a.retry",
    }
    body["steps"]["ask"]["choices"][1]["next"] = "odd"
    body["steps"]["lost"] = "not a step"
    body["steps"]["ask"]["choices"].append({"id": "x", "label": "a.no", "next": "lost"})
    codes = [(w, c, d) for w, c, d, _ in found(body)]
    assert ("ask", "needs_reprompt", "") in codes
    assert ("bye", "unknown_effect", "hug") in codes
    assert ("odd", "unknown_input", "colour") in codes
    assert ("lost", "step_shape", "") in codes
    # parse_flow still stops at the first, in English, with the same code
    with pytest.raises(FlowError) as stopped:
        parse_flow(body)
    assert stopped.value.code in {c for _, c, _ in codes}
    assert str(stopped.value).startswith("demo/")


def test_effects_and_slots_of_the_form_are_checked_by_the_loader() -> None:
    body = flow()
    body["steps"]["bye"]["effects"] = [{"grant_consent": {"purpose": "fun"}}]
    body["steps"]["bye"]["set"] = ["not", "a", "mapping"]
    codes = {(w, c) for w, c, _, _ in found(body)}
    assert ("bye", "consent_purpose") in codes or ("bye", "set_shape") in codes
    body["steps"]["bye"]["set"] = {"x": 1}
    assert ("bye", "consent_purpose", "grant_consent", True) in found(body)
    body["steps"]["bye"]["effects"] = [{"grant_consent": {"purpose": "care"}}, {"set_language": "vi"}]
    assert ("bye", "effect_arguments", "set_language", True) in found(body)
    body["steps"]["bye"]["max_length"] = "many"
    assert ("bye", "max_length", "", True) in found(body)


def test_what_the_flow_names_must_exist() -> None:
    body = flow()
    body["steps"]["ask"]["choices"][0]["intents"] = ["book", "dance"]
    body["steps"]["ask"]["choices"][1] = {"id": "no", "label": "a.no", "flow": "nowhere", "next": "bye"}
    body["steps"]["act"] = {"action": "fly", "next": "bye"}
    body["steps"]["pick"] = {
        "say": "a.ask",
        "reprompt": "a.retry",
        "choices_from": "stars",
        "store": "s",
        "next": "bye",
    }
    body["steps"]["ask"]["choices"].append({"id": "a", "label": "a.yes", "next": "act"})
    body["steps"]["ask"]["choices"].append({"id": "p", "label": "a.yes", "next": "pick"})
    problems = found(body)
    assert ("ask", "unknown_intent", "dance", True) in problems
    assert ("ask", "unknown_flow", "nowhere", True) in problems
    assert ("act", "unknown_action", "fly", True) in problems
    assert ("pick", "unknown_source", "stars", True) in problems
    assert not any(c == "unknown_intent" and d == "book" for _, c, d, _ in problems)
    # nothing known: nothing of that kind checked
    assert not any(c.startswith("unknown_") for _, c, _, _ in found(body, Known()) if c != "unknown_step")


def test_a_slot_set_and_never_read_is_shown_not_blocking() -> None:
    body = flow()
    body["steps"]["bye"]["set"] = {"mood": "happy"}
    problems = found(body)
    assert ("bye", "slot_never_read", "mood", False) in problems
    assert ("ask", "slot_never_read", "answer", False) in problems
    # read by a branch, a $ argument or a text's placeholder: not reported
    body["steps"]["bye"]["effects"] = [{"set_language": {"lang": "$mood"}}]
    body["steps"]["bye"]["set"] = {"mood": "happy", "name": "Ann"}
    assert [p for p in found(body) if p[1] == "slot_never_read"] == [
        ("ask", "slot_never_read", "answer", False)
    ]
    # an action may read any slot by name: nothing is said
    body["steps"]["bye"]["effects"] = [{"handoff": {}}]
    assert [p for p in found(body) if p[1] == "slot_never_read"] == []


@pytest.mark.parametrize("lang", ["zh-CN", "vi", "en"])
def test_every_problem_code_has_words_in_each_language(lang: str) -> None:
    from backend.content.kinds import Problem

    studio = {"unknown_step", "unreachable", "loop_without_exit", "missing_text", "unknown_action"}
    studio |= {"unknown_source", "unknown_intent", "unknown_flow", "slot_never_read"}
    for code in ERROR_CODES | studio:
        words = problem_text(Problem("s", code, ""), lang)
        assert words, code
        if lang != "en":
            assert words != problem_text(Problem("s", code, ""), "en"), (code, lang)


def test_flow_problems_of_what_is_not_a_flow() -> None:
    assert [e.code for e in flow_problems([1, 2])] == ["not_mapping"]
    assert [e.code for e in flow_problems({"id": "x", "version": 1, "start": "a", "steps": []})] == [
        "steps_shape"
    ]
