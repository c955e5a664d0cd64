"""Flow definitions: authored YAML (content/dialogues) parsed into steps, with errors naming the step.

A flow is `id`, `version`, `start` and `steps`. Each step may `say` a message key first, then is one of:

- a choice: `choices: [{id, label, next | flow, effects, intents}]` (and/or `choices_from: <source>`,
  options from a port at run time); `store: <slot>` keeps the chosen id. An option with `flow:` runs
  that sub-flow and comes back to its `next` (or ends when it has none). `intents:` are Rasa intents
  that pick the option when the text is not an option number or label (main menu routing).
- an input: `input: phone | birth_date | mrn | yes_no | number | date | text`, `store: <slot>`,
  `next`; `optional: true` lets the patient skip it (slot None); `max_length` for text.
- an action: `action: <name>` (a port), `outcomes: {<outcome>: <step>}`, `next` as the default.
- a questionnaire: `questionnaire: <id>` runs it item by item, then `next` (or ends).
- a branch: `branch: <slot>` goes to `outcomes[<the slot's value>]`, else to `next`.
- a say step: `next` or `end: true`.
Every kind may have `set: {slot: value}` (on entering), `effects:` (applied on entering the step;
`$slot` values are read from the conversation's slots) and `forget: [slots]` (dropped on entering,
after the effects: identifiers must not linger).
Questions need a `reprompt`. Message parameters in texts are filled from the slots.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bots.domain import ConsentPurpose
from bots.effects import Effect, GrantConsent, RevokeConsent


class FlowError(ValueError):
    """An authored flow is malformed; the message names the flow and step (in English, for logs and the
    command line). `code`, `step` and `detail` say the same for an editor's page, which words it in her
    language: the code picks the sentence, the detail is the flow's own name it is about."""

    def __init__(self, message: str, *, code: str = "definition", step: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.code, self.step, self.detail = code, step, detail


def _error(flow_id: str, step_id: str, code: str, message: str, detail: str = "") -> FlowError:
    where = f"{flow_id}/{step_id}" if step_id else flow_id
    return FlowError(f"{where}: {message}", code=code, step=step_id, detail=detail)


class InputKind(StrEnum):
    PHONE = "phone"
    BIRTH_DATE = "birth_date"
    MRN = "mrn"
    YES_NO = "yes_no"
    NUMBER = "number"
    DATE = "date"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class EffectSpec:
    """An effect whose arguments come from slots at run time (`purpose: $purpose`)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


# Every FlowError code (the editor's page words each in her language; a test checks each has words).
ERROR_CODES = frozenset(
    {
        "definition",
        "not_mapping",
        "no_id",
        "needs_start_steps",
        "steps_shape",
        "step_shape",
        "effect_shape",
        "unknown_effect",
        "effect_arguments",
        "consent_purpose",
        "choice_id_label",
        "unknown_input",
        "outcomes_shape",
        "set_shape",
        "not_a_list",
        "max_length",
        "unknown_start",
        "unknown_target",
        "one_kind",
        "needs_reprompt",
        "input_needs_next",
        "needs_store",
        "needs_outcomes",
        "choices_from_needs_next",
        "choice_needs_target",
        "goes_nowhere",
        "says_nothing",
    }
)
EFFECT_NAMES = {"grant_consent", "revoke_consent", "set_language", "submit_feedback", "handoff"}


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label_key: str
    next: str | None = None
    effects: tuple[Effect | EffectSpec, ...] = ()
    flow: str | None = None  # a sub-flow to run, returning to `next`
    intents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    say: str | None = None  # message key to send
    options: tuple[Option, ...] = ()  # a choice step when non-empty (or with choices_from)
    reprompt: str | None = None
    next: str | None = None
    end: bool = False
    store: str | None = None
    input: InputKind | None = None
    optional: bool = False
    max_length: int | None = None
    choices_from: str | None = None
    empty: str | None = None  # where a choices_from step goes when the source offers nothing
    action: str | None = None
    outcomes: Mapping[str, str] = field(default_factory=dict)
    questionnaire: str | None = None
    effects: tuple[Effect | EffectSpec, ...] = ()
    forget: tuple[str, ...] = ()
    branch: str | None = None
    set: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_choice(self) -> bool:
        return bool(self.options) or self.choices_from is not None

    @property
    def asks(self) -> bool:
        """Waits for the patient's reply (a choice or an input; questionnaires ask item by item)."""
        return self.is_choice or self.input is not None

    def targets(self) -> list[str]:
        found = [o.next for o in self.options if o.next]
        found += [t for t in (self.next, self.empty) if t]
        return found + list(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    version: int
    start: str
    steps: Mapping[str, Step]

    def message_keys(self) -> set[str]:
        keys: set[str] = set()
        for step in self.steps.values():
            keys.update(k for k in (step.say, step.reprompt) if k)
            keys.update(o.label_key for o in step.options)
        return keys

    def sub_flows(self) -> set[str]:
        return {o.flow for s in self.steps.values() for o in s.options if o.flow}


def _effect(flow_id: str, step_id: str, raw: Any) -> Effect | EffectSpec:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _error(
            flow_id, step_id, "effect_shape", "an effect is one mapping like {grant_consent: {purpose: care}}"
        )
    ((name, args),) = raw.items()
    args = dict(args or {}) if isinstance(args, Mapping) or args is None else None
    if name not in EFFECT_NAMES:
        raise _error(flow_id, step_id, "unknown_effect", f"unknown effect {name!r}", str(name))
    if args is None:
        raise _error(flow_id, step_id, "effect_arguments", f"{name} takes a mapping of arguments", str(name))
    if name in {"grant_consent", "revoke_consent"}:
        purpose = args.get("purpose")
        if isinstance(purpose, str) and purpose.startswith("$"):
            return EffectSpec(name, args)
        try:
            checked = ConsentPurpose(str(purpose))
        except (TypeError, ValueError) as exc:
            raise _error(
                flow_id,
                step_id,
                "consent_purpose",
                f"{name} needs a purpose of care, marketing or research",
                name,
            ) from exc
        return GrantConsent(checked) if name == "grant_consent" else RevokeConsent(checked)
    return EffectSpec(name, args)


def _option(flow_id: str, step_id: str, raw: Any) -> Option:
    try:
        return Option(
            id=str(raw["id"]),
            label_key=str(raw["label"]),
            next=str(raw["next"]) if raw.get("next") is not None else None,
            effects=tuple(_effect(flow_id, step_id, e) for e in raw.get("effects", [])),
            flow=str(raw["flow"]) if raw.get("flow") else None,
            intents=tuple(str(i) for i in raw.get("intents", [])),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise _error(flow_id, step_id, "choice_id_label", "a choice needs an id and a label") from exc


def _step(flow_id: str, step_id: str, raw: Mapping[str, Any]) -> Step:
    try:
        kind = InputKind(raw["input"]) if raw.get("input") is not None else None
    except ValueError as exc:
        raise _error(
            flow_id, step_id, "unknown_input", f"unknown input {raw['input']!r}", str(raw["input"])
        ) from exc
    outcomes = raw.get("outcomes") or {}
    if not isinstance(outcomes, Mapping):
        raise _error(flow_id, step_id, "outcomes_shape", "outcomes must map an outcome to a step")
    if not isinstance(raw.get("set") or {}, Mapping):
        raise _error(flow_id, step_id, "set_shape", "set must map a slot to a value")
    for name in ("effects", "forget", "choices"):
        if not isinstance(raw.get(name) or [], list):
            raise _error(flow_id, step_id, "not_a_list", f"{name} must be a list", name)
    if raw.get("max_length") is not None and not _whole(raw["max_length"]):
        raise _error(flow_id, step_id, "max_length", "max_length must be a whole number above 0")
    return Step(
        id=step_id,
        say=raw.get("say"),
        options=tuple(_option(flow_id, step_id, o) for o in raw.get("choices", [])),
        reprompt=raw.get("reprompt"),
        next=raw.get("next"),
        end=bool(raw.get("end", False)),
        store=raw.get("store"),
        input=kind,
        optional=bool(raw.get("optional", False)),
        max_length=int(raw["max_length"]) if raw.get("max_length") else None,
        choices_from=raw.get("choices_from"),
        empty=raw.get("empty"),
        action=raw.get("action"),
        outcomes={str(k): str(v) for k, v in outcomes.items()},
        questionnaire=raw.get("questionnaire"),
        effects=tuple(_effect(flow_id, step_id, e) for e in raw.get("effects", [])),
        forget=tuple(str(s) for s in raw.get("forget", [])),
        branch=raw.get("branch"),
        set=dict(raw.get("set") or {}),
    )


def _whole(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
        isinstance(value, str) and value.isdigit() and int(value) > 0
    )


def _head(data: Any) -> tuple[str, int, str, Mapping[Any, Any]]:
    """The flow's id, version, start and raw steps, or the FlowError that stops everything else."""
    if not isinstance(data, Mapping):
        raise FlowError("a flow file must be a mapping", code="not_mapping")
    flow_id = str(data.get("id") or "")
    if not flow_id:
        raise FlowError("flow has no id", code="no_id")
    try:
        version = int(data["version"])
        start = str(data["start"])
        raw_steps = data["steps"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _error(flow_id, "", "needs_start_steps", "needs version, start and steps") from exc
    if not isinstance(raw_steps, Mapping):
        raise _error(flow_id, "", "steps_shape", "steps must be a mapping")
    return flow_id, version, start, raw_steps


def _parsed(flow_id: str, step_id: str, raw: Any) -> Step:
    if not isinstance(raw, Mapping):
        raise _error(flow_id, step_id, "step_shape", "a step must be a mapping")
    return _step(flow_id, step_id, raw)


def parse_flow(data: Any) -> Flow:
    flow_id, version, start, raw_steps = _head(data)
    steps = {str(step_id): _parsed(flow_id, str(step_id), raw) for step_id, raw in raw_steps.items()}
    for problem in _problems(flow_id, start, steps, set(steps)):
        raise problem
    return Flow(id=flow_id, version=version, start=start, steps=steps)


def flow_problems(data: Any) -> list[FlowError]:
    """Every problem the loader finds, in one pass (parse_flow stops at the first): each step is parsed on
    its own and the steps that parse are checked; the studio shows an editor all of them at once."""
    try:
        flow_id, _version, start, raw_steps = _head(data)
    except FlowError as exc:
        return [exc]
    found: list[FlowError] = []
    steps: dict[str, Step] = {}
    for step_id, raw in raw_steps.items():
        try:
            steps[str(step_id)] = _parsed(flow_id, str(step_id), raw)
        except FlowError as exc:
            found.append(exc)
    return found + list(_problems(flow_id, start, steps, {str(k) for k in raw_steps}))


def _problems(flow_id: str, start: str, steps: Mapping[str, Step], ids: set[str]) -> Iterator[FlowError]:
    """The checks across a step's fields; `ids`: every step's name (a step that did not parse exists)."""
    if start not in ids:
        yield _error(flow_id, "", "unknown_start", f"start step {start!r} does not exist", start)
    for step in steps.values():

        def err(code: str, message: str, detail: str = "", step_id: str = step.id) -> FlowError:
            return _error(flow_id, step_id, code, message, detail)

        for target in step.targets():
            if target not in ids:
                yield err("unknown_target", f"goes to unknown step {target!r}", target)
        kinds = [step.is_choice, step.input is not None, step.action is not None, bool(step.questionnaire)]
        if sum(kinds) + (step.branch is not None) > 1:
            yield err("one_kind", "a step is one of choice, input, action, branch or questionnaire")
        if step.asks and not step.reprompt:
            yield err("needs_reprompt", "a question needs a reprompt")
        if step.input is not None and not step.next:
            yield err("input_needs_next", "an input needs a next step")
        if step.store is None and (step.input is not None or step.choices_from):
            yield err("needs_store", "an input or choices_from needs a store slot")
        if (step.action or step.branch) and not step.outcomes and not step.next:
            yield err("needs_outcomes", "an action or branch needs outcomes or a next step")
        if step.choices_from and not step.next:
            yield err("choices_from_needs_next", "choices_from needs a next step for the chosen option")
        for option in step.options:
            if option.next is None and option.flow is None:
                yield err(
                    "choice_needs_target", f"choice {option.id!r} needs a next step or a flow", option.id
                )
        waits = step.asks or step.action is not None or step.questionnaire or step.branch
        if not waits and not step.end and not step.next:
            yield err("goes_nowhere", "neither asks, ends, nor goes next")
        if step.say is None and not waits and not step.effects and not step.set:
            yield err("says_nothing", "says nothing")
