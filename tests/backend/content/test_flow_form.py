"""The flow editor's pure parts: the outline, the graph's layers and arrows, and a step's form back into the
body (what the form does not show is kept; a kind change drops the old kind's field)."""

from __future__ import annotations

from typing import Any

from backend.content.flow_form import body_from_form, graph, layers, outline, step_kind
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
                    {"id": "yes", "label": "a.yes", "next": "check", "intents": ["affirm"]},
                    {"id": "no", "label": "a.no", "next": "ask"},
                ],
            },
            "check": {
                "action": "look_up",
                "outcomes": {"found": "bye", "missing": "ask"},
                "effects": [{"handoff": {"reason": "asked"}}],
            },
            "bye": {"say": "a.bye", "end": True},
        },
    }


def test_step_kinds() -> None:
    steps = flow()["steps"]
    assert [step_kind(s) for s in steps.values()] == ["choice", "action", "say"]
    assert step_kind({"input": "phone"}) == "input" and step_kind({"questionnaire": "q"}) == "questionnaire"
    assert step_kind({"choices_from": "slots"}) == "choice" and step_kind({"branch": "x"}) == "branch"


def test_the_outline_reads_each_step_with_its_texts_and_problems() -> None:
    body = flow()
    body["steps"]["orphan"] = {"say": "a.bye", "end": True}
    views = outline(body, lambda key: f"<{key}>", validate(body))
    ask, check, _bye, orphan = views
    assert ask.says == "<a.ask>" and [c["label_text"] for c in ask.choices] == ["<a.yes>", "<a.no>"]
    assert check.onward() == [("outcome found", "bye"), ("outcome missing", "ask")]
    assert check.outcomes_text() == "found = bye\nmissing = ask"
    assert check.effects() == ["handoff {'reason': 'asked'}"]
    assert not orphan.reached and [p.code for p in orphan.problems] == ["unreachable"]


def test_the_graph_layers_steps_by_distance_and_draws_loops_round_the_side() -> None:
    body = flow()
    body["steps"]["orphan"] = {"say": "a.bye", "end": True}
    assert layers(body) == {"ask": 0, "check": 1, "bye": 2, "orphan": 3}
    drawn = graph(body, {"ask": "25%"})
    nodes = {n.id: n for n in drawn.nodes}
    assert nodes["ask"].y < nodes["check"].y < nodes["bye"].y < nodes["orphan"].y
    assert nodes["ask"].drop == "25%" and nodes["bye"].end and nodes["orphan"].drop == ""
    edges = {(e.source, e.target): e for e in drawn.edges}
    assert not edges[("ask", "check")].back and edges[("check", "ask")].back and edges[("ask", "ask")].back
    assert all(n.x + 170 <= drawn.width and n.y + 46 <= drawn.height for n in drawn.nodes)


def test_a_dangling_arrow_is_not_drawn() -> None:
    body = flow()
    body["steps"]["bye"] = {"say": "a.bye", "next": "gone"}
    assert ("bye", "gone") not in {(e.source, e.target) for e in graph(body).edges}


def _form(**fields: str) -> dict[str, str]:
    return {f"s|0|{k.replace('__', '|')}": v for k, v in fields.items()}


def test_a_steps_form_keeps_what_it_does_not_show() -> None:
    form = _form(
        id="ask",
        kind="choice",
        say="a.ask2",
        reprompt="a.retry",
        c0__orig="yes",
        c0__id="yes",
        c0__label="a.yes",
        c0__next="bye",
        c1__orig="no",
        c1__id="no",
        c1__label="a.no",
        c1__next="ask",
        c2__orig="",
        c2__id="",
    )
    body = body_from_form(flow(), form)
    ask = body["steps"]["ask"]
    assert ask["say"] == "a.ask2" and ask["store"] == "answer"
    assert ask["choices"][0] == {"id": "yes", "label": "a.yes", "next": "bye", "intents": ["affirm"]}
    assert body["steps"]["check"] == flow()["steps"]["check"]  # not carried: kept


def test_changing_a_steps_kind_drops_the_old_kinds_field() -> None:
    form = {"s|1|id": "check", "s|1|kind": "branch", "s|1|branch": "answer", "s|1|outcomes": "yes = bye\nbad"}
    check = body_from_form(flow(), form)["steps"]["check"]
    assert "action" not in check and check["branch"] == "answer" and check["outcomes"] == {"yes": "bye"}
    assert check["effects"] == [{"handoff": {"reason": "asked"}}]


def test_removing_a_step_and_adding_one() -> None:
    body = body_from_form(flow(), {"s|2|id": "bye", "s|2|remove": "1"})
    assert list(body["steps"]) == ["ask", "check"]
    added = body_from_form(flow(), {"s|3|id": "extra", "s|3|kind": "say", "s|3|say": "a.bye", "s|3|end": "1"})
    assert list(added["steps"]) == ["ask", "check", "bye", "extra"]
    taken = body_from_form(flow(), {"s|3|id": "bye", "s|3|say": "a.other"})
    assert taken["steps"]["bye"] == {"say": "a.bye", "end": True}  # a name in use adds nothing
