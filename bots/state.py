"""Conversation state: where a conversation is in which flow version, its slots and survey progress (JSON)."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(slots=True)
class StepVisit:
    """One step entered: what conversation_steps records, for drop-off per step."""

    flow_id: str
    flow_version: int
    step: str


@dataclass(slots=True)
class ConversationState:
    """Everything is JSON: the state is stored on the conversation and survives restarts.

    `stack` holds the parent flows of a sub-flow as {flow_id, flow_version, step} (the step to come
    back to; "" ends the parent too). `offered` is what a `choices_from` step showed, as [id, label].
    `survey` is the questionnaire in progress ({questionnaire, answers, skipped, resume}); surveys
    left mid-way wait in `saved_surveys` by questionnaire id until the patient comes back to them.
    `pending` is "language" while the language question of the global command is open.
    """

    flow_id: str
    flow_version: int
    step: str
    failures: int = 0
    ended: bool = False
    lang: str | None = None  # chosen in the conversation (language command); else the patient's
    slots: dict[str, Any] = field(default_factory=dict)
    stack: list[dict[str, Any]] = field(default_factory=list)
    offered: list[list[str]] = field(default_factory=list)
    survey: dict[str, Any] | None = None
    saved_surveys: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationState:
        known = {f.name for f in fields(cls)}
        return cls(**copy.deepcopy({k: v for k, v in data.items() if k in known}))

    def copy(self) -> ConversationState:
        return ConversationState.from_json(self.to_json())
