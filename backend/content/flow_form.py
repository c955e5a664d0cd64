"""The flow editor's form, pure: a flow body as a readable outline of steps (with the texts they say in
the editor's language), a layered graph of where each step goes (laid out here, drawn as SVG by the
template), and the edited form back into a body.

Fields are named `s|<n>|<field>` for step n in authored order (a step may be renamed), choices
`s|<n>|c<m>|<field>`; an empty block at the end of each list adds one, a "remove" box drops one. Each
step is a form of its own (a flow of 200 steps as one form would pass the form parser's 1000-field
limit). A step's form shows every field of a step (effects, set, forget, store, optional, max_length,
choices_from, empty, and per choice its intents and effects: flow_fields.py reads them); a part no form
shows (a key the grammar does not know) is kept from the draft as it was, so nothing is lost by a save.
A step's form may move it a place up or down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.content import flow_fields as fields
from backend.content.flows import choices_of, reachable, steps_of, targets
from backend.content.kinds import Problem
from bots.flows import InputKind

KINDS = ("say", "choice", "input", "action", "branch", "questionnaire")
INPUTS = tuple(k.value for k in InputKind)
MAX_CHOICES = 100  # per step (one form): 5 fields each stays under the form parser's 1000-field limit
STEP_ID = 64


def step_kind(step: Mapping[str, Any]) -> str:
    if step.get("choices") or step.get("choices_from"):
        return "choice"
    for name in ("input", "action", "branch", "questionnaire"):
        if step.get(name):
            return name
    return "say"


@dataclass
class StepView:
    n: int
    id: str
    kind: str
    step: Mapping[str, Any]
    says: str  # the text of `say` in the editor's language ("" when none or unknown)
    choices: list[dict[str, str]]  # id, label key, label text, next, flow
    goes: list[tuple[str, str]]  # (how, target step)
    problems: list[Problem] = field(default_factory=list)
    reached: bool = True

    def onward(self) -> list[tuple[str, str]]:
        """Where the step goes other than through its choices (shown with the choices)."""
        return [(how, t) for how, t in self.goes if not how.startswith("choice ")]

    def outcomes_text(self) -> str:
        outcomes = self.step.get("outcomes")
        return "\n".join(f"{k} = {v}" for k, v in outcomes.items()) if isinstance(outcomes, Mapping) else ""

    def effects_text(self) -> str:
        return fields.effects_text(self.step.get("effects"))

    def set_text(self) -> str:
        return fields.set_text(self.step.get("set"))

    def forget_text(self) -> str:
        return fields.words_text(self.step.get("forget"))

    def effects(self) -> list[str]:
        raw = self.step.get("effects")
        if not isinstance(raw, list):
            return []
        return [
            ", ".join(f"{k} {dict(v or {})}" if v else str(k) for k, v in e.items())
            for e in raw
            if isinstance(e, Mapping)
        ]


def outline(body: Mapping[str, Any], text: Callable[[str], str], problems: list[Problem]) -> list[StepView]:
    """The steps in authored order; `text(key)` is the catalogue's text in the editor's language."""
    seen = reachable(body)
    views = []
    for n, (step_id, step) in enumerate(steps_of(body).items()):
        choices = [
            {
                "id": str(c.get("id", "")),
                "label": str(c.get("label", "")),
                "label_text": text(str(c.get("label", ""))) if c.get("label") else "",
                "next": str(c.get("next") or ""),
                "flow": str(c.get("flow") or ""),
                "intents": fields.words_text(c.get("intents")),
                "effects": fields.effects_text(c.get("effects")).replace("\n", "; "),
            }
            for c in choices_of(step)
        ]
        views.append(
            StepView(
                n=n,
                id=step_id,
                kind=step_kind(step),
                step=step,
                says=text(str(step["say"])) if step.get("say") else "",
                choices=choices,
                goes=targets(step),
                problems=[p for p in problems if p.where == step_id],
                reached=step_id in seen,
            )
        )
    return views


# --- the graph ---------------------------------------------------------------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 170, 46, 40, 56, 12


@dataclass(frozen=True)
class Node:
    id: str
    x: int
    y: int
    label: str  # the step's kind
    end: bool
    drop: str  # the drop-off shown on the node ("" when nobody reached it)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    how: str
    path: str  # SVG path data
    back: bool  # goes up (a loop back)


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def layers(body: Mapping[str, Any]) -> dict[str, int]:
    """Each step's depth from the start (breadth first); steps nothing reaches go to a last layer."""
    steps = steps_of(body)
    start = str(body.get("start") or "")
    depth: dict[str, int] = {}
    frontier = [start] if start in steps else []
    level = 0
    while frontier:
        nxt = []
        for step_id in frontier:
            if step_id in depth:
                continue
            depth[step_id] = level
            nxt += [t for _, t in targets(steps[step_id]) if t in steps and t not in depth]
        frontier, level = nxt, level + 1
    last = max(depth.values(), default=-1) + 1
    for step_id in steps:
        depth.setdefault(step_id, last)
    return depth


def graph(body: Mapping[str, Any], drop: Mapping[str, str] | None = None) -> Graph:
    steps = steps_of(body)
    depth = layers(body)
    rows: dict[int, list[str]] = {}
    for step_id in steps:  # authored order within a layer
        rows.setdefault(depth[step_id], []).append(step_id)
    widest = max((len(r) for r in rows.values()), default=1)
    width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X
    nodes: dict[str, Node] = {}
    for level, ids in sorted(rows.items()):
        row_w = len(ids) * NODE_W + (len(ids) - 1) * GAP_X
        left = (width - row_w) // 2
        for i, step_id in enumerate(ids):
            step = steps[step_id]
            nodes[step_id] = Node(
                step_id,
                left + i * (NODE_W + GAP_X),
                MARGIN + level * (NODE_H + GAP_Y),
                step_kind(step),
                bool(step.get("end")),
                (drop or {}).get(step_id, ""),
            )
    edges = []
    for step_id, step in steps.items():
        a = nodes[step_id]
        for how, target in targets(step):
            b = nodes.get(target)
            if b is None:
                continue  # a dangling step: the outline names it
            x1, y1 = a.x + NODE_W // 2, a.y + NODE_H
            x2, y2 = b.x + NODE_W // 2, b.y
            if b.y > a.y:
                mid = (y1 + y2) // 2
                path = f"M{x1},{y1} C{x1},{mid} {x2},{mid} {x2},{y2 - 2}"
                edges.append(Edge(step_id, target, how, path, False))
            else:  # back (or sideways) to an earlier layer: round the right-hand side
                x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
                x2, y2 = b.x + NODE_W, b.y + NODE_H // 2
                bend = max(x1, x2) + GAP_X // 2 + 10
                path = f"M{x1},{y1} C{bend},{y1} {bend},{y2} {x2 + 2},{y2}"
                edges.append(Edge(step_id, target, how, path, True))
    height = MARGIN * 2 + (max(rows, default=0) + 1) * (NODE_H + GAP_Y) - GAP_Y
    return Graph(list(nodes.values()), edges, width + GAP_X, height)


# --- the form back into a body ---------------------------------------------------------------------


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _outcomes(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            if k.strip() and v.strip():
                out[k.strip()] = v.strip()
    return out


# The fields a whole step's form shows besides the basic ones; with `|all` in the form each is replaced by
# what was typed (an emptied field removes it), without it (the short "add a step" form) kept as it was.
_FULL = ("store", "optional", "max_length", "choices_from", "empty", "effects", "set", "forget")


def _full_fields(step: dict[str, Any], form: Mapping[str, str], p: str, kind: str) -> None:
    for name in _FULL:
        step.pop(name, None)
    if value := _clean(form.get(f"{p}|store")):
        step["store"] = value
    if kind == "input" and form.get(f"{p}|optional"):
        step["optional"] = True
    if kind == "input" and (value := _clean(form.get(f"{p}|max_length"))):
        step["max_length"] = int(value) if value.isdigit() else value
    if kind == "choice":
        for name in ("choices_from", "empty"):
            if value := _clean(form.get(f"{p}|{name}")):
                step[name] = value
    if effects := fields.effects_from(form.get(f"{p}|effects", "")):
        step["effects"] = effects
    if sets := fields.set_from(form.get(f"{p}|set", "")):
        step["set"] = sets
    if forget := fields.words_from(form.get(f"{p}|forget", "")):
        step["forget"] = forget


def _choice_from(form: Mapping[str, str], c: str, kept: Mapping[str, Any], full: bool) -> dict[str, Any]:
    kept = {k: v for k, v in kept.items() if k not in ("id", "label", "next", "flow")}
    if full:
        kept = {k: v for k, v in kept.items() if k not in ("intents", "effects")}
    choice: dict[str, Any] = {"id": _clean(form.get(f"{c}|id")), "label": _clean(form.get(f"{c}|label"))}
    for name in ("next", "flow"):
        if value := _clean(form.get(f"{c}|{name}")):
            choice[name] = value
    if full and (intents := fields.words_from(form.get(f"{c}|intents", ""))):
        choice["intents"] = intents
    if full and (effects := fields.effects_from(form.get(f"{c}|effects", "").replace(";", "\n"))):
        choice["effects"] = effects
    return {**choice, **kept}


def _step_from(old: Mapping[str, Any], form: Mapping[str, str], p: str) -> dict[str, Any]:
    """Step `p`'s fields over what the draft held: what the form shows is replaced, the rest kept."""
    full = bool(form.get(f"{p}|all"))
    step = {
        k: v for k, v in old.items() if k not in ("say", "reprompt", "next", "end", "choices", "outcomes")
    }
    kind = _clean(form.get(f"{p}|kind")) or step_kind(old)
    for name in ("input", "action", "branch", "questionnaire", "choices_from"):
        if name != kind and not (name == "choices_from" and kind == "choice"):
            step.pop(name, None)
    if kind in ("input", "action", "branch", "questionnaire"):
        step[kind] = _clean(form.get(f"{p}|{kind}")) or old.get(kind) or ""
    for name in ("say", "reprompt", "next"):
        value = _clean(form.get(f"{p}|{name}"))
        if value:
            step[name] = value
    if form.get(f"{p}|end"):
        step["end"] = True
    if kind in ("action", "branch"):
        outcomes = _outcomes(form.get(f"{p}|outcomes", ""))
        if outcomes:
            step["outcomes"] = outcomes
    if full:
        _full_fields(step, form, p, kind)
    if kind == "choice":
        old_choices = {str(c.get("id")): c for c in choices_of(old)}
        choices = []
        for m in range(MAX_CHOICES):
            c = f"{p}|c{m}"
            if f"{c}|id" not in form:
                break
            if not _clean(form.get(f"{c}|id")) or form.get(f"{c}|remove"):
                continue
            kept = old_choices.get(_clean(form.get(f"{c}|orig")), {})
            choices.append(_choice_from(form, c, kept, full))
        if choices:
            step["choices"] = choices
    return step


def _moved(steps: dict[str, dict[str, Any]], step_id: str, way: str) -> dict[str, dict[str, Any]]:
    """The steps with one moved a place up or down (the authored order: the outline's and the graph's)."""
    order = list(steps)
    if step_id not in order:
        return steps
    i = order.index(step_id)
    j = i - 1 if way == "up" else i + 1 if way == "down" else i
    if 0 <= j < len(order):
        order[i], order[j] = order[j], order[i]
    return {k: steps[k] for k in order}


def body_from_form(body: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The draft's body with the edits of the form posted (one step's, or the new step's); the steps it
    did not carry are kept as they were, in authored order. Renaming a step renames every way to it; a
    new name another step already has is not taken (the step keeps its name, nothing is overwritten)."""
    old_steps = list(steps_of(body).items())
    taken = {step_id for step_id, _ in old_steps}
    steps: dict[str, dict[str, Any]] = {}
    renamed: dict[str, str] = {}
    moving: tuple[str, str] | None = None
    for n, (old_id, old) in enumerate([*old_steps, ("", {})]):
        p = f"s|{n}"
        if f"{p}|id" not in form:
            if old_id:
                steps[old_id] = dict(old)
            continue
        new_id = _clean(form.get(f"{p}|id"))[:STEP_ID]
        if not new_id or form.get(f"{p}|remove"):
            continue
        if new_id != old_id and (new_id in taken or new_id in steps):
            if not old_id:
                continue  # a new step under a name in use: nothing to add
            new_id = old_id
        if old_id and new_id != old_id:
            renamed[old_id] = new_id
        steps[new_id] = _step_from(old, form, p)
        if way := _clean(form.get(f"{p}|move")):
            moving = (new_id, way)
    if renamed:
        steps = {k: _renamed(v, renamed) for k, v in steps.items()}
    if moving:
        steps = _moved(steps, *moving)
    start = _clean(form.get("start")) or str(body.get("start") or "")
    return {
        **{k: v for k, v in body.items() if k != "steps"},
        "start": renamed.get(start, start),
        "steps": steps,
    }


def _renamed(step: dict[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    out = dict(step)
    for name in ("next", "empty"):
        if out.get(name) in renamed:
            out[name] = renamed[out[name]]
    if isinstance(out.get("outcomes"), Mapping):
        out["outcomes"] = {k: renamed.get(v, v) for k, v in out["outcomes"].items()}
    if isinstance(out.get("choices"), list):
        out["choices"] = [
            {**c, "next": renamed.get(c["next"], c["next"])}
            if isinstance(c, Mapping) and c.get("next")
            else c
            for c in out["choices"]
        ]
    return out
