"""The engine's ports: small Protocols bots defines and backend implements (flows, choices, actions, surveys).

The engine stays pure: everything it needs from the world comes through these, and every port has a
plain in-memory form for tests (tests/bots build them from dicts and lambdas).

- `FlowLibrary.get(flow_id, version)` returns that version of an authored flow; `version=None` means
  the current one. Conversations finish on the version they started with, so old versions must stay
  loadable (backend: content/dialogues/<id>.yaml plus content/dialogues/versions/<id>.v<N>.yaml).
- `ChoiceSource(slots, lang) -> Sequence[DynamicChoice]`: options computed at run time (departments,
  current consents, free slots...). Registered by name in `Ports.choices`; a flow step says
  `choices_from: <name>`. The options offered are kept in the conversation state, so the reply is
  matched against exactly what the patient saw.
- `Action(slots, lang) -> ActionResult`: does something whose outcome steers the flow (identify and
  bind a patient, book a slot) in the turn's transaction. Registered by name in `Ports.actions`; a
  step says `action: <name>` and maps `outcomes: {<outcome>: <step>}`. `ActionResult.slots` are
  merged into the conversation's slots (a value of None deletes the slot).
- `SurveyPort`: the questionnaire definitions a `questionnaire:` step runs, and the re-prompt
  messages of questionnaires.answers.accept.
- `Understand`: free text -> a `Reading` (intent + entities) or an intent name, or None when unsure
  or when Rasa is unavailable. Only text the deterministic parsers could not read reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bots.flows import Flow
from questionnaires.model import Questionnaire

Slots = Mapping[str, Any]  # JSON values only: they are persisted on the conversation


@dataclass(frozen=True, slots=True)
class DynamicChoice:
    id: str  # stored in the step's `store` slot when chosen; a string, JSON-safe
    label: str  # already in the patient's language


@dataclass(frozen=True, slots=True)
class ActionResult:
    outcome: str  # picks the next step through the step's `outcomes` (else its `next`)
    slots: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reading:
    """What Rasa understood: an intent and its entities as (kind, value) pairs."""

    intent: str
    entities: tuple[tuple[str, str], ...] = ()


class FlowLibrary(Protocol):
    def get(self, flow_id: str, version: int | None = None) -> Flow:
        """The flow at `version` (None: the current one); raises KeyError when unknown."""
        ...


class ChoiceSource(Protocol):
    def __call__(self, slots: Slots, lang: str) -> Sequence[DynamicChoice]: ...


class Action(Protocol):
    def __call__(self, slots: Slots, lang: str) -> ActionResult: ...


class SurveyPort(Protocol):
    def questionnaire(self, questionnaire_id: str) -> Questionnaire | None: ...

    def answer_messages(self) -> Mapping[str, Mapping[str, str]]:
        """lang -> key -> template, for questionnaires.answers.accept's re-prompts."""
        ...


Understand = Callable[[str], "str | Reading | None"]


@dataclass(frozen=True)
class SingleFlow:
    """A library of one flow, at the version it has: what `take_turn(flow, ...)` uses when no library
    is given (the welcome flow alone, as before flows could call one another)."""

    flow: Flow

    def get(self, flow_id: str, version: int | None = None) -> Flow:
        if flow_id != self.flow.id or (version is not None and version != self.flow.version):
            raise KeyError(f"{flow_id} v{version}")
        return self.flow


@dataclass(frozen=True)
class DictLibrary:
    """Flows held in memory, every version of each: for tests and the simulator."""

    flows: Mapping[str, Mapping[int, Flow]]

    @classmethod
    def of(cls, *flows: Flow) -> DictLibrary:
        table: dict[str, dict[int, Flow]] = {}
        for flow in flows:
            table.setdefault(flow.id, {})[flow.version] = flow
        return cls(table)

    def get(self, flow_id: str, version: int | None = None) -> Flow:
        versions = self.flows[flow_id]
        return versions[max(versions) if version is None else version]


@dataclass(frozen=True)
class Ports:
    """Everything the engine may call besides pure functions; empty by default."""

    choices: Mapping[str, ChoiceSource] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    surveys: SurveyPort | None = None
