"""One turn of a flow: state + inbound -> new state, replies and effects. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bots.catalog import Catalog
from bots.domain import ConsentPurpose
from bots.effects import Effect, HandoffReason, RequestHandoff, RevokeConsent
from bots.flows import Flow, Step
from bots.messages import Choice, Choices, Inbound, InboundKind, Outbound, Text
from nlu.parsing import parse_option, parse_yes_no
from nlu.safety import SafetyKind, check

MAX_FAILED_CLARIFICATIONS = 2
YES_OPTION_IDS = {"yes", "agree", "grant"}
NO_OPTION_IDS = {"no", "decline", "revoke"}


@dataclass(slots=True)
class ConversationState:
    flow_id: str
    flow_version: int
    step: str
    failures: int = 0
    ended: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationState:
        return cls(**data)


@dataclass(slots=True)
class TurnResult:
    state: ConversationState
    replies: list[Outbound] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


def _ask(step: Step, lang: str, catalog: Catalog, prompt_key: str | None) -> Outbound:
    parts: list[Text | Choices] = []
    if prompt_key:
        parts.append(Text(catalog.text(lang, prompt_key)))
    options = tuple(Choice(o.id, catalog.text(lang, o.label_key)) for o in step.options)
    parts.append(Choices(options))
    return Outbound(tuple(parts))


def _run_from(flow: Flow, step_id: str, lang: str, catalog: Catalog, result: TurnResult) -> None:
    """Say steps until a question or the end; leaves result.state on the step reached."""
    step = flow.steps[step_id]
    while True:
        result.state.step = step.id
        result.state.failures = 0
        if step.asks:
            result.replies.append(_ask(step, lang, catalog, step.say))
            return
        if step.say:
            result.replies.append(Outbound((Text(catalog.text(lang, step.say)),)))
        if step.end or step.next is None:
            result.state.ended = True
            return
        step = flow.steps[step.next]


Understand = Callable[[str], str | None]  # free text -> an intent name, or None when unsure / unavailable
YES_INTENTS = {"affirm", "consent_grant"}
NO_INTENTS = {"deny", "consent_revoke"}


def _match(
    step: Step, inbound: Inbound, lang: str, catalog: Catalog, understand: Understand | None = None
) -> int | None:
    ids = [o.id for o in step.options]
    if inbound.choice is not None:
        return ids.index(inbound.choice) if inbound.choice in ids else None
    found = parse_option(inbound.text, [catalog.text(lang, o.label_key) for o in step.options])
    if found is not None:
        return found
    yes_no = parse_yes_no(inbound.text)
    if yes_no is None and understand is not None:  # only free text the parsers could not read
        intent = understand(inbound.text)
        yes_no = True if intent in YES_INTENTS else False if intent in NO_INTENTS else None
    wanted = YES_OPTION_IDS if yes_no else NO_OPTION_IDS if yes_no is False else set()
    hits = [i for i, option_id in enumerate(ids) if option_id in wanted]
    return hits[0] if len(hits) == 1 else None


def _safety(inbound: Inbound, lang: str, catalog: Catalog, result: TurnResult) -> bool:
    """Safety rules run before anything else and never depend on Rasa: emergencies and requests for a
    person go to staff at once, STOP revokes care messages on this channel. True when one fired."""
    if inbound.choice is not None or not inbound.text:
        return False
    hit = check(inbound.text)
    if hit is None:
        return False
    if hit.kind is SafetyKind.STOP:
        result.effects.append(RevokeConsent(ConsentPurpose.CARE))
        result.replies.append(Outbound((Text(catalog.text(lang, "common.stopped")),)))
        result.state.ended = True
        return True
    emergency = hit.kind is SafetyKind.EMERGENCY
    result.replies.append(
        Outbound((Text(catalog.text(lang, "common.emergency" if emergency else "common.passed_to_staff")),))
    )
    result.effects.append(
        RequestHandoff(HandoffReason.EMERGENCY if emergency else HandoffReason.ASKED_FOR_HUMAN)
    )
    result.state.ended = True
    return True


def take_turn(
    flow: Flow,
    state: ConversationState | None,
    inbound: Inbound,
    lang: str,
    catalog: Catalog,
    understand: Understand | None = None,
) -> TurnResult:
    if state is None:
        result = TurnResult(ConversationState(flow.id, flow.version, flow.start))
        _run_from(flow, flow.start, lang, catalog, result)
        return result
    result = TurnResult(ConversationState(**asdict(state)))
    if inbound.kind is InboundKind.CONVERSATION_STARTED:
        return result  # the page was opened again: nothing new to say
    if state.ended:
        result.replies.append(Outbound((Text(catalog.text(lang, "common.passed_to_staff")),)))
        result.effects.append(RequestHandoff(HandoffReason.MESSAGE_AFTER_END))
        return result
    if _safety(inbound, lang, catalog, result):
        return result
    step = flow.steps[state.step]
    index = _match(step, inbound, lang, catalog, understand) if step.asks else None
    if index is None:
        result.state.failures += 1
        if result.state.failures >= MAX_FAILED_CLARIFICATIONS:
            result.state.ended = True
            result.replies.append(Outbound((Text(catalog.text(lang, "common.passed_to_staff")),)))
            result.effects.append(RequestHandoff(HandoffReason.CLARIFICATION_FAILED))
        else:
            result.replies.append(_ask(step, lang, catalog, step.reprompt))
        return result
    option = step.options[index]
    result.effects.extend(option.effects)
    _run_from(flow, option.next, lang, catalog, result)
    return result
