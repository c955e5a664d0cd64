"""The flow kind, pure: the loader's validation plus unknown, unreachable and trapped steps and missing
text keys, each named at its step; the diff per step and field; which changes are clinical."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.content.flows import diff, reachable, touches_clinical, trapped, validate
from backend.dialogue.content import catalog_tables

CONTENT = Path(__file__).resolve().parents[3] / "content"
KEYS = {"a.ask", "a.retry", "a.yes", "a.no", "a.bye", "a.again"}


def flow() -> dict[str, Any]:
    return {
        "id": "demo",
        "version": 1,
        "start": "ask",
        "steps": {
            "ask": {
                "say": "a.ask",
                "reprompt": "a.retry",
                "choices": [
                    {"id": "yes", "label": "a.yes", "next": "bye"},
                    {"id": "no", "label": "a.no", "next": "bye"},
                ],
            },
            "bye": {"say": "a.bye", "end": True},
        },
    }


def codes(body: dict[str, Any], keys: set[str] | None = KEYS) -> list[tuple[str, str, str]]:
    return [(p.where, p.code, p.detail) for p in validate(body, keys)]


@pytest.mark.parametrize("path", sorted((CONTENT / "dialogues").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_flow_is_valid_against_the_shipped_texts(path: Path) -> None:
    keys = {k for table in catalog_tables(CONTENT).values() for k in table}
    assert validate(yaml.safe_load(path.read_text(encoding="utf-8")), keys) == []


def test_a_valid_flow_has_no_problems() -> None:
    assert codes(flow()) == []


def test_every_dangling_step_is_named_where_it_is_and_where_it_went() -> None:
    body = flow()
    body["steps"]["ask"]["choices"][1]["next"] = "nowhere"
    body["steps"]["bye"] = {"say": "a.bye", "next": "gone"}
    found = codes(body)
    assert ("ask", "unknown_step", "choice no → nowhere") in found
    assert ("bye", "unknown_step", "next → gone") in found
    # the loader stops at the first; it is not named twice
    assert not any(c == "definition" for _, c, _ in found)


def test_an_unknown_start_is_named() -> None:
    body = flow()
    body["start"] = "missing"
    assert ("", "unknown_step", "start: missing") in codes(body)


def test_a_step_nothing_reaches_is_unreachable() -> None:
    body = flow()
    body["steps"]["orphan"] = {"say": "a.bye", "end": True}
    assert codes(body) == [("orphan", "unreachable", "")]
    assert reachable(body) == {"ask", "bye"}


def test_a_loop_without_exit_names_each_step_of_it() -> None:
    body = flow()
    body["steps"]["ask"]["choices"] = [
        {"id": "yes", "label": "a.yes", "next": "again"},
        {"id": "no", "label": "a.no", "next": "again"},
    ]
    body["steps"]["again"] = {"say": "a.again", "next": "ask"}
    found = codes(body)
    assert ("ask", "loop_without_exit", "") in found and ("again", "loop_without_exit", "") in found
    assert ("bye", "unreachable", "") in found
    assert trapped(body) == {"ask", "again"}


def test_a_loop_with_a_way_out_is_fine() -> None:
    body = flow()
    body["steps"]["ask"]["choices"][1]["next"] = "again"
    body["steps"]["again"] = {"say": "a.again", "next": "ask"}
    assert codes(body) == []


@pytest.mark.parametrize(
    "exit_step",
    [
        {"say": "a.bye", "effects": [{"handoff": {"reason": "asked"}}], "next": "ask"},
        {"questionnaire": "post_discharge"},
        {"say": "a.bye", "reprompt": "a.retry", "choices": [{"id": "x", "label": "a.yes", "flow": "faq"}]},
    ],
    ids=["handoff", "questionnaire", "subflow"],
)
def test_a_handoff_a_last_questionnaire_or_a_last_sub_flow_leave_the_flow(exit_step: dict[str, Any]) -> None:
    body = flow()
    body["steps"]["ask"]["choices"] = [{"id": "yes", "label": "a.yes", "next": "out"}]
    body["steps"]["out"] = exit_step
    body["steps"].pop("bye")
    assert codes(body) == []


def test_missing_text_keys_are_named_at_their_step_and_not_checked_without_a_catalogue() -> None:
    body = flow()
    body["steps"]["bye"]["say"] = "a.farewell"
    body["steps"]["ask"]["choices"][0]["label"] = "a.maybe"
    assert codes(body) == [("ask", "missing_text", "a.maybe"), ("bye", "missing_text", "a.farewell")]
    assert codes(body, None) == []


def test_the_loaders_own_rules_are_named_at_their_step() -> None:
    body = flow()
    del body["steps"]["ask"]["reprompt"]
    assert codes(body) == [("ask", "needs_reprompt", "")]
    assert codes({"id": "x"}) == [("", "needs_start_steps", "")]
    assert codes({"nothing": 1}) == [("", "no_id", "")]


def test_the_diff_names_the_step_and_field_and_ignores_the_version() -> None:
    before, after = flow(), flow()
    after["version"] = 7
    after["steps"]["ask"]["choices"][1]["next"] = "ask"
    after["steps"]["bye"]["say"] = "a.again"
    changes = [(c.where, c.before, c.after) for c in diff(before, after)]
    assert changes == [("steps/ask/choices/no/next", "bye", "ask"), ("steps/bye/say", "a.bye", "a.again")]
    assert diff(before, copy.deepcopy(before)) == []


def test_changes_at_safety_steps_are_clinical_others_not() -> None:
    before = flow()
    before["steps"]["human"] = {
        "say": "safety.human",
        "effects": [{"handoff": {"reason": "asked"}}],
        "end": True,
    }
    before["steps"]["ask"]["choices"][1]["next"] = "human"
    ordinary = copy.deepcopy(before)
    ordinary["steps"]["bye"]["say"] = "a.again"
    assert not touches_clinical(before, ordinary)
    safety = copy.deepcopy(before)
    safety["steps"]["human"]["end"] = False
    safety["steps"]["human"]["next"] = "ask"
    assert touches_clinical(before, safety)
    removed = copy.deepcopy(before)
    del removed["steps"]["human"]  # removing the hand-off is a change at a safety step too
    assert touches_clinical(before, removed)
