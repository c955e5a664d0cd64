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

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bots.domain import ConsentPurpose
from bots.effects import Effect, GrantConsent, RevokeConsent


class FlowError(ValueError):
    """An authored flow is malformed; the message names the flow and step."""


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
        raise FlowError(
            f"{flow_id}/{step_id}: an effect is one mapping like {{grant_consent: {{purpose: care}}}}"
        )
    ((name, args),) = raw.items()
    args = dict(args or {}) if isinstance(args, Mapping) or args is None else None
    if name not in EFFECT_NAMES:
        raise FlowError(f"{flow_id}/{step_id}: unknown effect {name!r}")
    if args is None:
        raise FlowError(f"{flow_id}/{step_id}: {name} takes a mapping of arguments")
    if name in {"grant_consent", "revoke_consent"}:
        purpose = args.get("purpose")
        if isinstance(purpose, str) and purpose.startswith("$"):
            return EffectSpec(name, args)
        try:
            checked = ConsentPurpose(str(purpose))
        except (TypeError, ValueError) as exc:
            raise FlowError(
                f"{flow_id}/{step_id}: {name} needs a purpose of care, marketing or research"
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
        raise FlowError(f"{flow_id}/{step_id}: a choice needs an id and a label") from exc


def _step(flow_id: str, step_id: str, raw: Mapping[str, Any]) -> Step:
    where = f"{flow_id}/{step_id}"
    try:
        kind = InputKind(raw["input"]) if raw.get("input") is not None else None
    except ValueError as exc:
        raise FlowError(f"{where}: unknown input {raw['input']!r}") from exc
    outcomes = raw.get("outcomes") or {}
    if not isinstance(outcomes, Mapping):
        raise FlowError(f"{where}: outcomes must map an outcome to a step")
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


def parse_flow(data: Any) -> Flow:
    if not isinstance(data, Mapping):
        raise FlowError("a flow file must be a mapping")
    flow_id = str(data.get("id") or "")
    if not flow_id:
        raise FlowError("flow has no id")
    try:
        version = int(data["version"])
        start = str(data["start"])
        raw_steps = data["steps"]
    except (KeyError, TypeError, ValueError) as exc:
        raise FlowError(f"{flow_id}: needs version, start and steps") from exc
    if not isinstance(raw_steps, Mapping):
        raise FlowError(f"{flow_id}: steps must be a mapping")
    steps: dict[str, Step] = {}
    for step_id, raw in raw_steps.items():
        if not isinstance(raw, Mapping):
            raise FlowError(f"{flow_id}/{step_id}: a step must be a mapping")
        steps[str(step_id)] = _step(flow_id, str(step_id), raw)
    _check(flow_id, start, steps)
    return Flow(id=flow_id, version=version, start=start, steps=steps)


def _check(flow_id: str, start: str, steps: Mapping[str, Step]) -> None:
    if start not in steps:
        raise FlowError(f"{flow_id}: start step {start!r} does not exist")
    for step in steps.values():
        where = f"{flow_id}/{step.id}"
        for target in step.targets():
            if target not in steps:
                raise FlowError(f"{where}: goes to unknown step {target!r}")
        kinds = [step.is_choice, step.input is not None, step.action is not None, bool(step.questionnaire)]
        if sum(kinds) + (step.branch is not None) > 1:
            raise FlowError(f"{where}: a step is one of choice, input, action, branch or questionnaire")
        if step.asks and not step.reprompt:
            raise FlowError(f"{where}: a question needs a reprompt")
        if step.input is not None and not step.next:
            raise FlowError(f"{where}: an input needs a next step")
        if step.store is None and (step.input is not None or step.choices_from):
            raise FlowError(f"{where}: an input or choices_from needs a store slot")
        if (step.action or step.branch) and not step.outcomes and not step.next:
            raise FlowError(f"{where}: an action or branch needs outcomes or a next step")
        if step.choices_from and not step.next:
            raise FlowError(f"{where}: choices_from needs a next step for the chosen option")
        for option in step.options:
            if option.next is None and option.flow is None:
                raise FlowError(f"{where}: choice {option.id!r} needs a next step or a flow")
        waits = step.asks or step.action is not None or step.questionnaire or step.branch
        if not waits and not step.end and not step.next:
            raise FlowError(f"{where}: neither asks, ends, nor goes next")
        if step.say is None and not waits and not step.effects and not step.set:
            raise FlowError(f"{where}: says nothing")
