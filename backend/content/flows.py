"""The dialogue-flow kind of the studio: a body is a flow definition (the mapping of a
content/dialogues/<id>.yaml file, as bots.flows.parse_flow reads it); the item's key is the flow id.

Validation is the loader's own plus what an editor needs named at its step: every step that goes to an
unknown step, steps nothing reaches, text keys the published catalogue lacks, and loops a patient can
never leave. Pure: the text keys known come from the caller.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from backend.content.kinds import Change, Problem
from backend.content.questionnaire import flatten
from bots.flows import flow_problems

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


@dataclass(frozen=True)
class Known:
    """What a flow may name that lives outside it (None: not checked): the published catalogue's text keys
    and texts (key -> every language's text, for the slots they read), the NLU's intents, the actions and
    choice sources of the engine's ports, and the flows there are."""

    keys: Collection[str] | None = None
    texts: Mapping[str, str] | None = None
    intents: Collection[str] | None = None
    actions: Collection[str] | None = None
    sources: Collection[str] | None = None
    flows: Collection[str] | None = None


# loader codes the studio names better itself: with how the step goes there (unknown_step above)
_NAMED_HERE = frozenset({"unknown_target", "unknown_start"})
# effects that read the conversation's slots by name (a feedback case its kind and text, a hand-off its
# context): with one of these, or an action or a sub-flow, in the flow any slot may be read
_READING_EFFECTS = frozenset({"submit_feedback", "handoff"})
_PLACEHOLDER = re.compile(r"{(\w+)}")


def _effect_items(raw: Any) -> Iterator[tuple[str, Any]]:
    for effect in raw if isinstance(raw, list) else []:
        if isinstance(effect, Mapping):
            yield from ((str(k), v) for k, v in effect.items())


def _named(step_id: str, step: Mapping[str, Any], known: Known) -> Iterator[Problem]:
    """What the step names that does not exist: an action, a choice source, an intent, a sub-flow."""
    action, source = step.get("action"), step.get("choices_from")
    if known.actions is not None and action and str(action) not in known.actions:
        yield Problem(step_id, "unknown_action", str(action))
    if known.sources is not None and source and str(source) not in known.sources:
        yield Problem(step_id, "unknown_source", str(source))
    for choice in choices_of(step):
        raw = choice.get("intents")
        intents: list[Any] = raw if isinstance(raw, list) else []
        if known.intents is not None:
            yield from (
                Problem(step_id, "unknown_intent", str(i)) for i in intents if str(i) not in known.intents
            )
        flow = choice.get("flow")
        if known.flows is not None and flow and str(flow) not in known.flows:
            yield Problem(step_id, "unknown_flow", str(flow))


def unread_slots(body: Mapping[str, Any], texts: Mapping[str, str]) -> list[Problem]:
    """Slots the flow sets (`set`, `store`) that nothing in it reads: a branch, a `$slot` argument, a
    `{slot}` in a text it says. Actions, sub-flows and some effects read slots by name, so with one of
    them in the flow nothing is reported. Not blocking: another flow of the conversation may read it."""
    steps = steps_of(body)
    written: dict[str, str] = {}
    read: set[str] = set()
    for step_id, step in steps.items():
        items = list(_effect_items(step.get("effects")))
        for choice in choices_of(step):
            items += list(_effect_items(choice.get("effects")))
            if choice.get("flow"):
                return []
        if step.get("action") or step.get("questionnaire") or any(n in _READING_EFFECTS for n, _ in items):
            return []
        sets = step.get("set")
        for slot in [*(sets if isinstance(sets, Mapping) else {}), step.get("store")]:
            if slot:
                written.setdefault(str(slot), step_id)
        if step.get("branch"):
            read.add(str(step["branch"]))
        for _name, args in items:
            values = args.values() if isinstance(args, Mapping) else []
            read |= {v[1:] for v in values if isinstance(v, str) and v.startswith("$")}
        for key in text_keys(step):
            read |= set(_PLACEHOLDER.findall(texts.get(key, "")))
    return [
        Problem(step, "slot_never_read", slot, blocking=False)
        for slot, step in written.items()
        if slot not in read
    ]


def validate(
    body: Mapping[str, Any], keys: Collection[str] | None = None, known: Known | None = None
) -> list[Problem]:
    """Every problem, each at its step: the loader's (all of them, each in its own words by its code), ways
    to steps that do not exist, unreached and trapped steps, and what the flow names that `known` lacks.
    `keys`: the text keys the published catalogue holds (None: not checked; `known.keys` likewise)."""
    known = known or Known(keys=keys)
    if keys is not None and known.keys is None:
        known = replace(known, keys=keys)
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
    for step_id, step in steps.items():
        if known.keys is not None:
            have = set(known.keys) | set(ENGINE_KEYS)
            problems += [Problem(step_id, "missing_text", k) for k in text_keys(step) if k not in have]
        problems += _named(step_id, step, known)
    loader = [
        Problem(e.step, e.code, e.detail)
        for e in flow_problems({**body, "version": body.get("version", 1)})
        if e.code not in _NAMED_HERE
    ]
    if known.texts is not None:
        problems += unread_slots(body, known.texts)
    return loader + problems


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
    """A change at a safety step (of either side) is clinical; other flow changes are not. Each safety
    step is compared whole, side by side (flattening two 200-step flows into a diff took 50 ms a call,
    and the editor's page asks twice)."""
    old, new = steps_of(published or {}), steps_of(body)
    safety = set(safety_steps(published or {})) | set(safety_steps(body))
    return any(old.get(step) != new.get(step) for step in safety)


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
