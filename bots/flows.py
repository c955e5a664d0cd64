"""Flow definitions: authored YAML (content/dialogues) parsed into steps, with errors naming the step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bots.domain import ConsentPurpose
from bots.effects import Effect, GrantConsent, RevokeConsent


class FlowError(ValueError):
    """An authored flow is malformed; the message names the flow and step."""


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label_key: str
    next: str
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    say: str | None = None  # message key to send
    options: tuple[Option, ...] = ()  # an ask step when non-empty
    reprompt: str | None = None
    next: str | None = None  # for say-only steps
    end: bool = False

    @property
    def asks(self) -> bool:
        return bool(self.options)


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


def _effect(flow_id: str, step_id: str, raw: Any) -> Effect:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise FlowError(
            f"{flow_id}/{step_id}: an effect is one mapping like {{grant_consent: {{purpose: care}}}}"
        )
    ((name, args),) = raw.items()
    try:
        purpose = ConsentPurpose(args["purpose"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FlowError(
            f"{flow_id}/{step_id}: {name} needs a purpose of care, marketing or research"
        ) from exc
    if name == "grant_consent":
        return GrantConsent(purpose)
    if name == "revoke_consent":
        return RevokeConsent(purpose)
    raise FlowError(f"{flow_id}/{step_id}: unknown effect {name!r}")


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
        options = tuple(
            Option(
                id=str(o["id"]),
                label_key=str(o["label"]),
                next=str(o["next"]),
                effects=tuple(_effect(flow_id, str(step_id), e) for e in o.get("effects", [])),
            )
            for o in raw.get("choices", [])
        )
        steps[str(step_id)] = Step(
            id=str(step_id),
            say=raw.get("say"),
            options=options,
            reprompt=raw.get("reprompt"),
            next=raw.get("next"),
            end=bool(raw.get("end", False)),
        )
    _check(flow_id, start, steps)
    return Flow(id=flow_id, version=version, start=start, steps=steps)


def _check(flow_id: str, start: str, steps: Mapping[str, Step]) -> None:
    if start not in steps:
        raise FlowError(f"{flow_id}: start step {start!r} does not exist")
    for step in steps.values():
        targets = [o.next for o in step.options] + ([step.next] if step.next else [])
        for target in targets:
            if target not in steps:
                raise FlowError(f"{flow_id}/{step.id}: goes to unknown step {target!r}")
        if step.asks and not step.reprompt:
            raise FlowError(f"{flow_id}/{step.id}: a question needs a reprompt")
        if not step.asks and not step.end and not step.next:
            raise FlowError(f"{flow_id}/{step.id}: neither asks, ends, nor goes next")
        if step.say is None and not step.asks:
            raise FlowError(f"{flow_id}/{step.id}: says nothing")
