"""The dialogue-flow kind of the studio: a body is a flow definition (the mapping of a
content/dialogues/<id>.yaml file, as bots.flows.parse_flow reads it); the item's key is the flow id.

Validation is the loader's own plus what an editor needs named at its step: every step that goes to an
unknown step, steps nothing reaches, text keys the published catalogue lacks, and loops a patient can
never leave. Pure: the text keys known come from the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from backend.content.kinds import Change, Problem
from backend.content.questionnaire import flatten
from bots.flows import FlowError, parse_flow

KIND = "flows"
# Keys the engine itself speaks at any question (yes/no buttons, skip): never authored in a flow but
# always needed, so they are not the flow's to check.
ENGINE_KEYS = ("common.yes", "common.no", "common.skip")
# What makes a step a safety step: a change to one is clinical (a colleague with the approver grant):
# handing a patient to staff, and the emergency and safety texts.
SAFETY_EFFECTS = frozenset({"handoff"})
SAFETY_PREFIXES = ("safety.", "emergency")


def steps_of(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = body.get("steps")
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, Mapping)}


def choices_of(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = step.get("choices")
    return [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []


def targets(step: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(how, target step) for every step this step may go to: `next`, `empty`, a choice, an outcome."""
    out: list[tuple[str, str]] = []
    for choice in choices_of(step):
        if choice.get("next") is not None:
            out.append((f"choice {choice.get('id', '?')}", str(choice["next"])))
    for name in ("next", "empty"):
        if step.get(name) is not None:
            out.append((name, str(step[name])))
    outcomes = step.get("outcomes")
    if isinstance(outcomes, Mapping):
        out += [(f"outcome {k}", str(v)) for k, v in outcomes.items()]
    return out


def text_keys(step: Mapping[str, Any]) -> list[str]:
    keys = [str(step[k]) for k in ("say", "reprompt") if step.get(k)]
    return keys + [str(c["label"]) for c in choices_of(step) if c.get("label")]


def _exits(step: Mapping[str, Any]) -> bool:
    """Leaving the flow from this step: an end, a hand-off, a sub-flow or questionnaire with nothing after
    it (the flow ends when it returns), or an action or branch whose outcome may lead out."""
    if step.get("end"):
        return True
    effects = step.get("effects")
    if isinstance(effects, list) and any(isinstance(e, Mapping) and "handoff" in e for e in effects):
        return True
    if step.get("questionnaire") and not step.get("next"):
        return True
    return any(c.get("flow") and c.get("next") is None for c in choices_of(step))


def reachable(body: Mapping[str, Any]) -> set[str]:
    steps = steps_of(body)
    start = str(body.get("start") or "")
    seen: set[str] = set()
    todo = [start] if start in steps else []
    while todo:
        step_id = todo.pop()
        if step_id in seen:
            continue
        seen.add(step_id)
        todo += [t for _, t in targets(steps[step_id]) if t in steps and t not in seen]
    return seen


def trapped(body: Mapping[str, Any]) -> set[str]:
    """Reachable steps from which no way out of the flow can be reached: the patient goes round for ever."""
    steps = steps_of(body)
    reverse: dict[str, set[str]] = {s: set() for s in steps}
    for step_id, step in steps.items():
        for _, target in targets(step):
            if target in reverse:
                reverse[target].add(step_id)
    leaves = [s for s, step in steps.items() if _exits(step)]
    free: set[str] = set()
    while leaves:
        step_id = leaves.pop()
        if step_id in free:
            continue
        free.add(step_id)
        leaves += [s for s in reverse[step_id] if s not in free]
    return reachable(body) - free


def _loader_problem(message: str, flow_id: str) -> Problem:
    # the loader's messages name "<flow>/<step>: ..." or "<flow>: ..."
    head, _, detail = message.partition(": ")
    where = head.split("/", 1)[1] if head.startswith(f"{flow_id}/") else ""
    return Problem(where, "definition", detail or message)


def validate(body: Mapping[str, Any], keys: Collection[str] | None = None) -> list[Problem]:
    """Every problem, each at its step. `keys`: the text keys the published catalogue holds (None: not
    checked)."""
    flow_id = str(body.get("id") or "")
    steps = steps_of(body)
    problems: list[Problem] = []
    start = str(body.get("start") or "")
    if steps and start not in steps:
        problems.append(Problem("", "unknown_step", f"start: {start}"))
    for step_id, step in steps.items():
        for how, target in targets(step):
            if target not in steps:
                problems.append(Problem(step_id, "unknown_step", f"{how} → {target}"))
    unreached = set(steps) - reachable(body) if start in steps else set()
    problems += [Problem(s, "unreachable", "") for s in steps if s in unreached]
    loops = trapped(body)
    problems += [Problem(s, "loop_without_exit", "") for s in steps if s in loops]
    if keys is not None:
        known = set(keys) | set(ENGINE_KEYS)
        for step_id, step in steps.items():
            problems += [Problem(step_id, "missing_text", k) for k in text_keys(step) if k not in known]
    unknown = any(p.code == "unknown_step" for p in problems)
    try:
        parse_flow(body)
    except FlowError as exc:
        message = str(exc)
        # an unknown step the loader stops at is already named at every step above
        if not (unknown and ("unknown step" in message or "does not exist" in message)):
            problems.insert(0, _loader_problem(message, flow_id))
    return problems


def _normal(body: Mapping[str, Any]) -> dict[str, Any]:
    # the version is the revision's number once published, not an editor's change
    return {k: v for k, v in body.items() if k != "version"}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Per step and field: "steps/ask/say", "steps/ask/choices/yes/next"; choices by their ids."""
    old, new = flatten(_normal(before)), flatten(_normal(after))
    keys = sorted(set(old) | set(new), key=lambda k: (k[0], k[1] or ""))
    return [
        Change(where, lang, old.get((where, lang)), new.get((where, lang)))
        for where, lang in keys
        if old.get((where, lang)) != new.get((where, lang))
    ]


def safety_steps(body: Mapping[str, Any]) -> Iterator[str]:
    for step_id, step in steps_of(body).items():
        effects = step.get("effects") if isinstance(step.get("effects"), list) else []
        named = {str(k) for e in effects if isinstance(e, Mapping) for k in e}  # type: ignore[union-attr]
        action = str(step.get("action") or "")
        if (
            named & SAFETY_EFFECTS
            or "emergency" in action
            or any(k.startswith(SAFETY_PREFIXES) for k in text_keys(step))
        ):
            yield step_id


def touches_clinical(published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    """A change at a safety step (of either side) is clinical; other flow changes are not."""
    safety = set(safety_steps(published or {})) | set(safety_steps(body))
    for change in diff(published or {}, body):
        parts = change.where.split("/")
        if len(parts) > 1 and parts[0] == "steps" and parts[1] in safety:
            return True
    return False


class Flows:
    """The ContentKind of dialogue flows."""

    name = KIND

    def validate(self, body: Mapping[str, Any]) -> list[Problem]:
        return validate(body)

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
        return diff(before, after)

    def preview(self, body: Mapping[str, Any], lang: str) -> dict[str, str]:
        # the keys each step says; the editor page shows their texts in the editor's language
        return {s: str(step.get("say") or "") for s, step in steps_of(body).items()}

    def needs_approver(self, published: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
        return touches_clinical(published, body)
