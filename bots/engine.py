"""One turn of a conversation: state + inbound -> new state, replies, effects and steps visited. Pure; no I/O.

API (stable; additions only):

    take_turn(flow, state, inbound, lang, catalog, understand=None, *, library=None, ports=None,
              message_lang=None, screened=None)
        -> TurnResult(state, replies, effects, visits)
    hand_over(state) -> ConversationState   (stopped for staff, a survey in progress kept)

- `flow` is where a new conversation (state None) starts. With a `library` (bots.ports.FlowLibrary)
  an existing conversation continues on the flow *and version* its state names, so a conversation
  finishes on the version it started with; sub-flows (`flow:` options) and the global "menu"
  command load flows from it too. Without one, only `flow` is known.
- `ports` (bots.ports.Ports) holds the named choice sources, actions and the survey port.
- `understand` reads free text the parsers could not: an intent name or a bots.ports.Reading.
- Order in every turn: safety rules (emergency, a person, STOP; never Rasa), then global commands
  (menu, help, language, skip), then the current step's answer, then Rasa for free text only.
  Two failed clarifications in a row hand the conversation to staff.
- `TurnResult.visits` lists every step entered (conversation_steps rows, for drop-off reports).
- `message_lang`: the language this message is clearly written in; this turn's replies use it, while
  the conversation's and the patient's language stay (only a language choice changes those).
- `hand_over`: the caller acted on the message itself (an emergency answered whoever held the
  conversation) and the bot must stop as a hand-off stops it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bots import survey
from bots.catalog import Catalog
from bots.commands import Command, CommandHit, command_of
from bots.domain import LANGUAGES, ConsentPurpose, pick_language
from bots.effects import (
    Effect,
    FeedbackKind,
    GrantConsent,
    HandoffReason,
    RequestHandoff,
    RevokeConsent,
    SetLanguage,
    SubmitFeedback,
)
from bots.flows import EffectSpec, Flow, FlowError, InputKind, Option, Step
from bots.inputs import parse_input
from bots.messages import Choice, Choices, Inbound, InboundKind, Outbound, Text
from bots.ports import Ports, Reading, SingleFlow, Understand
from bots.state import ConversationState, StepVisit
from nlu.parsing import parse_yes_no
from nlu.safety import SafetyHit, SafetyKind, check
from questionnaires.options import match_choice

__all__ = [
    "MENU_FLOW",
    "ConversationState",
    "StepVisit",
    "TurnResult",
    "Understand",
    "hand_over",
    "take_turn",
]

MAX_FAILED_CLARIFICATIONS = 2
MAX_STEPS_PER_TURN = 64  # an authored loop of say/action steps must not hang a turn
MENU_FLOW = "main_menu"  # where the global "menu" command goes, when the library has it
SKIP = "__skip"  # the payload of the Skip button
YES_OPTION_IDS = {"yes", "agree", "grant"}
NO_OPTION_IDS = {"no", "decline", "revoke"}
YES_INTENTS = {"affirm", "consent_grant"}
NO_INTENTS = {"deny", "consent_revoke"}


@dataclass(slots=True)
class TurnResult:
    state: ConversationState
    replies: list[Outbound] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    visits: list[StepVisit] = field(default_factory=list)


def _read(understand: Understand | None, text: str) -> Reading | None:
    if understand is None or not text.strip():
        return None
    found = understand(text)
    return Reading(found) if isinstance(found, str) else found


class _Turn:
    """The working parts of one turn; `take_turn` is the only way in."""

    def __init__(
        self,
        library: Any,
        ports: Ports,
        catalog: Catalog,
        understand: Understand | None,
        lang: str,
        today: date,
    ) -> None:
        self.library, self.ports, self.catalog, self.understand = library, ports, catalog, understand
        self.lang, self.today = lang, today
        self.result: TurnResult
        self.screened: Screened | None = None  # the caller's safety reading of this message, if any

    # --- texts -------------------------------------------------------------------------------
    def text(self, key: str) -> str:
        params = {
            k: v for k, v in self.state.slots.items() if isinstance(v, str | int) and not k.startswith("_")
        }
        return self.catalog.text(self.lang, key, **params)

    def say(self, *parts: Text | Choices) -> None:
        self.result.replies.append(Outbound(tuple(parts)))

    def say_key(self, key: str) -> None:
        self.say(Text(self.text(key)))

    @property
    def state(self) -> ConversationState:
        return self.result.state

    def flow(self) -> Flow:
        return self.library.get(self.state.flow_id, self.state.flow_version)  # type: ignore[no-any-return]

    # --- entering steps ------------------------------------------------------------------------
    def choices_of(self, step: Step) -> list[tuple[str, str]]:
        """(payload, label) of every option the step offers now: dynamic ones first, then authored."""
        found = [(p, label) for p, label in self.state.offered] if step.choices_from else []
        return found + [(o.id, self.text(o.label_key)) for o in step.options]

    def ask(self, step: Step, prompt_key: str | None) -> None:
        parts: list[Text | Choices] = [Text(self.text(prompt_key))] if prompt_key else []
        if step.is_choice:
            parts.append(Choices(tuple(Choice(p, label) for p, label in self.choices_of(step))))
        elif step.input is InputKind.YES_NO:
            yes, no = self.text("common.yes"), self.text("common.no")
            parts.append(Choices((Choice("yes", yes), Choice("no", no))))
        if step.input is not None and step.optional:
            parts.append(Choices((Choice(SKIP, self.text("common.skip")),)))
        self.say(*parts)

    def run_from(self, flow: Flow, step_id: str) -> None:
        """Enter steps until one waits for the patient or the conversation ends."""
        for _ in range(MAX_STEPS_PER_TURN):
            step = flow.steps[step_id]
            self.state.flow_id, self.state.flow_version = flow.id, flow.version
            self.state.step, self.state.failures = step.id, 0
            self.result.visits.append(StepVisit(flow.id, flow.version, step.id))
            self.state.slots.update(step.set)
            for spec in step.effects:
                self.apply(spec)
            for slot in step.forget:  # after the effects, which may read them
                self.state.slots.pop(slot, None)
            if self.state.ended:  # a hand-off effect
                if step.say:
                    self.say_key(step.say)
                return
            target = self.enter(flow, step)
            if target is None:
                return
            if target == "":
                popped = self.pop()
                if popped is None:
                    self.finish()
                    return
                flow, step_id = popped
            else:
                step_id = target
        raise FlowError(f"{flow.id}: more than {MAX_STEPS_PER_TURN} steps in one turn (a loop?)")

    def enter(self, flow: Flow, step: Step) -> str | None:
        """Say and do what the step does; the next step id, "" for the end, None to wait."""
        if step.is_choice:
            if step.choices_from:
                source = self.ports.choices[step.choices_from]
                offered = source(self.state.slots, self.lang)
                self.state.offered = [[c.id, c.label] for c in offered]
                if not offered and step.empty:
                    return step.empty
            self.ask(step, step.say)
            return None
        if step.input is not None:
            self.ask(step, step.say)
            return None
        if step.say:
            self.say_key(step.say)
        if step.branch is not None:
            return step.outcomes.get(str(self.state.slots.get(step.branch)), step.next) or ""
        if step.action is not None:
            outcome = self.ports.actions[step.action](self.state.slots, self.lang)
            for key, value in outcome.slots.items():
                if value is None:
                    self.state.slots.pop(key, None)
                else:
                    self.state.slots[key] = value
            target = step.outcomes.get(outcome.outcome, step.next)
            if target is None:
                raise FlowError(f"{flow.id}/{step.id}: no step for outcome {outcome.outcome!r}")
            return target
        if step.questionnaire and not survey.start(self, step):
            return None
        return "" if step.end or step.next is None else step.next

    def pop(self) -> tuple[Flow, str] | None:
        """Back to the parent flow after a sub-flow ended; None when there is none (or it ends too)."""
        while self.state.stack:
            frame = self.state.stack.pop()
            if frame["step"]:
                return self.library.get(frame["flow_id"], frame["flow_version"]), str(frame["step"])
        return None

    def start_flow(self, flow_id: str, return_to: str | None) -> None:
        flow = self.library.get(flow_id)
        self.state.stack.append(
            {"flow_id": self.state.flow_id, "flow_version": self.state.flow_version, "step": return_to or ""}
        )
        self.run_from(flow, flow.start)

    # --- effects -------------------------------------------------------------------------------
    def slot(self, value: Any) -> Any:
        return self.state.slots.get(value[1:]) if isinstance(value, str) and value.startswith("$") else value

    def apply(self, spec: Effect | EffectSpec) -> None:
        if not isinstance(spec, EffectSpec):
            self.result.effects.append(spec)
            return
        args = {k: self.slot(v) for k, v in spec.args.items()}
        if spec.name in {"grant_consent", "revoke_consent"}:
            purpose = ConsentPurpose(args["purpose"])
            self.result.effects.append(
                GrantConsent(purpose) if spec.name == "grant_consent" else RevokeConsent(purpose)
            )
        elif spec.name == "set_language":
            self.set_language(pick_language(str(args.get("lang", ""))))
        elif spec.name == "submit_feedback":
            department = self.slot(args.get("department", "$department"))
            self.result.effects.append(
                SubmitFeedback(
                    kind=FeedbackKind(self.slot(args.get("kind", "$feedback_kind"))),
                    text=str(self.slot(args.get("text", "$feedback_text")) or ""),
                    anonymous=bool(self.slot(args.get("anonymous", "$anonymous"))),
                    department_id=int(department) if department not in (None, "", "none") else None,
                )
            )
        elif spec.name == "handoff":
            self.hand_off(HandoffReason(args.get("reason", HandoffReason.FLOW_HANDOFF.value)), say=None)

    def set_language(self, lang: str) -> None:
        self.lang = self.state.lang = lang
        self.result.effects.append(SetLanguage(lang))

    def hand_off(self, reason: HandoffReason, say: str | None = "common.passed_to_staff") -> None:
        survey.save(self.state)
        if say:
            self.say_key(say)
        self.result.effects.append(RequestHandoff(reason))
        self.state.ended = True

    # --- answers -------------------------------------------------------------------------------
    def fail(self, reprompt: Any) -> None:
        """An answer we could not read: re-ask (the callable) or, the second time, hand off."""
        self.state.failures += 1
        if self.state.failures >= MAX_FAILED_CLARIFICATIONS:
            self.hand_off(HandoffReason.CLARIFICATION_FAILED)
        else:
            reprompt()

    def match_choice(self, step: Step, inbound: Inbound) -> tuple[int, Reading | None] | None:
        choices = self.choices_of(step)
        ids = [p for p, _ in choices]
        if inbound.choice is not None:
            return (ids.index(inbound.choice), None) if inbound.choice in ids else None
        found = match_choice(choices, inbound.text, self.lang)
        if found is not None:
            return found, None
        yes_no = parse_yes_no(inbound.text)
        reading = None
        if yes_no is None:  # only free text the parsers could not read goes to Rasa
            reading = _read(self.understand, inbound.text)
            if reading is not None:
                offset = len(choices) - len(step.options)
                for i, option in enumerate(step.options):
                    if reading.intent in option.intents:
                        return offset + i, reading
                yes_no = (
                    True if reading.intent in YES_INTENTS else False if reading.intent in NO_INTENTS else None
                )
        wanted = YES_OPTION_IDS if yes_no else NO_OPTION_IDS if yes_no is False else set()
        hits = [i for i, option_id in enumerate(ids) if option_id in wanted]
        return (hits[0], reading) if len(hits) == 1 else None

    def answer_choice(self, flow: Flow, step: Step, inbound: Inbound) -> None:
        matched = self.match_choice(step, inbound)
        if matched is None:
            self.fail(lambda: self.ask(step, step.reprompt))
            return
        self.choose(flow, step, matched)

    def choose(self, flow: Flow, step: Step, matched: tuple[int, Reading | None]) -> None:
        index, reading = matched
        self.state.slots.pop("intent", None)
        if reading is not None:  # chosen by what Rasa understood: sub-flows may branch on it
            self.state.slots["intent"] = reading.intent
            if reading.entities:
                self.state.slots["entities"] = dict(reading.entities)
        dynamic = len(self.state.offered) if step.choices_from else 0
        if index < dynamic:
            payload, label = self.state.offered[index]
            if step.store:
                self.state.slots[step.store], self.state.slots[f"{step.store}_label"] = payload, label
            self.state.offered = []
            self.continue_to(flow, step.next)
            return
        option: Option = step.options[index - dynamic]
        if step.store:
            self.state.slots[step.store] = option.id
        self.state.offered = []
        for effect in option.effects:
            self.apply(effect)
        if option.flow:
            self.start_flow(option.flow, option.next)
        else:
            self.continue_to(flow, option.next)

    def continue_to(self, flow: Flow, step_id: str | None) -> None:
        if step_id:
            self.run_from(flow, step_id)
            return
        popped = self.pop()
        if popped is None:
            self.finish()
        else:
            self.run_from(*popped)

    def finish(self) -> None:
        """The conversation's top flow has ended: the menu is offered (when the library has one and this
        was not the menu itself, whose "goodbye" ends the conversation), so a patient is never left at
        a dead end whose next message goes to staff."""
        if self.state.flow_id != MENU_FLOW and self.has_menu():
            self.state.stack, self.state.offered = [], []
            menu = self.library.get(MENU_FLOW)
            self.run_from(menu, menu.start)
        else:
            self.state.ended = True

    def answer_input(self, flow: Flow, step: Step, inbound: Inbound, command: CommandHit | None) -> None:
        assert step.input is not None and step.store is not None
        skipping = inbound.choice == SKIP or (command is not None and command.command is Command.SKIP)
        value: Any
        if skipping and step.optional:
            value = None
        elif step.input is InputKind.YES_NO and inbound.choice in {"yes", "no"}:
            value = inbound.choice == "yes"
        else:
            value = parse_input(step.input, inbound.text, self.lang, self.today, step.max_length)
            if value is None and step.input is InputKind.YES_NO:
                reading = _read(self.understand, inbound.text)
                intent = reading.intent if reading else None
                value = True if intent in YES_INTENTS else False if intent in NO_INTENTS else None
            if value is None:
                self.fail(lambda: self.ask(step, step.reprompt))
                return
        self.state.slots[step.store] = value
        self.continue_to(flow, step.next)

    # --- global commands -----------------------------------------------------------------------
    def has_menu(self) -> bool:
        try:
            self.library.get(MENU_FLOW)
        except KeyError:
            return False
        return True

    def go_to_menu(self) -> None:
        survey.save(self.state)
        self.state.stack, self.state.ended, self.state.offered = [], False, []
        menu = self.library.get(MENU_FLOW)
        self.run_from(menu, menu.start)

    def menu_after_end(self, inbound: Inbound) -> None:
        """A message to a conversation that has ended (goodbye, STOP, handed back by staff): the menu
        answers it, going straight to the option it names (a digit, a label, what was understood),
        else showing itself. Nothing goes to staff unasked."""
        survey.save(self.state)
        self.state.stack, self.state.ended, self.state.offered = [], False, []
        menu = self.library.get(MENU_FLOW)
        step = menu.steps[menu.start]
        matched = self.match_choice(step, inbound) if step.options and not step.choices_from else None
        if matched is None:
            self.run_from(menu, menu.start)
            return
        self.state.flow_id, self.state.flow_version = menu.id, menu.version
        self.state.step, self.state.failures = step.id, 0
        self.result.visits.append(StepVisit(menu.id, menu.version, step.id))
        self.choose(menu, step, matched)

    def repeat_question(self) -> None:
        """Say again what the conversation is waiting for (after help or a language change)."""
        if self.state.ended:
            return
        step = self.flow().steps[self.state.step]
        if self.state.survey is not None:
            survey.ask(self, step)
        elif step.asks:
            self.ask(step, step.say)

    def ask_language(self) -> None:
        self.state.pending = "language"
        choices = tuple(Choice(lang, self.catalog.text(lang, "common.language_name")) for lang in LANGUAGES)
        self.say(Text(self.text("common.language_question")), Choices(choices))

    def answer_language(self, inbound: Inbound, command: CommandHit | None) -> bool:
        """The reply to the language question; False when it was not one (ask the step instead)."""
        self.state.pending = None
        names = [(lang, self.catalog.text(lang, "common.language_name")) for lang in LANGUAGES]
        if inbound.choice in LANGUAGES:
            chosen: str | None = inbound.choice
        elif command is not None and command.lang:
            chosen = command.lang
        else:
            index = match_choice(names, inbound.text, self.lang)
            chosen = LANGUAGES[index] if index is not None else None
        if chosen is None:
            return False
        self.set_language(chosen)
        self.say_key("common.language_set")
        self.repeat_question()
        return True

    def command(self, hit: CommandHit) -> bool:
        """Run a global command; False when it does not apply here (e.g. skip outside a question)."""
        if hit.command is Command.MENU and self.has_menu():
            self.go_to_menu()
            return True
        if hit.command is Command.HELP:
            self.say_key("common.help")
            self.repeat_question()
            return True
        if hit.command is Command.LANGUAGE:
            if hit.lang is None:
                self.ask_language()
            else:
                self.set_language(hit.lang)
                self.say_key("common.language_set")
                self.repeat_question()
            return True
        return False

    # --- the turn ------------------------------------------------------------------------------
    def safety(self, inbound: Inbound) -> bool:
        """Safety rules run before anything else and never depend on Rasa: emergencies and requests for
        a person go to staff at once, STOP revokes care messages on this channel. True when one fired."""
        if inbound.choice is not None or not inbound.text:
            return False
        hit = self.screened.hit if self.screened is not None else check(inbound.text)
        if hit is None:
            return False
        if hit.kind is SafetyKind.STOP:
            survey.save(self.state)
            self.result.effects.append(RevokeConsent(ConsentPurpose.CARE))
            self.say_key("common.stopped")
            self.state.ended = True
            return True
        emergency = hit.kind is SafetyKind.EMERGENCY
        self.hand_off(
            HandoffReason.EMERGENCY if emergency else HandoffReason.ASKED_FOR_HUMAN,
            say="common.emergency" if emergency else "common.passed_to_staff",
        )
        return True

    def reply_to(self, inbound: Inbound) -> None:
        if self.safety(inbound):
            return
        command = command_of(inbound.text) if inbound.choice is None else None
        if self.state.pending == "language" and self.answer_language(inbound, command):
            return
        if command is not None and command.command is Command.MENU and self.command(command):
            return
        if self.state.ended and self.has_menu():
            self.menu_after_end(inbound)
            return
        if self.state.ended:
            self.say_key("common.passed_to_staff")
            self.result.effects.append(RequestHandoff(HandoffReason.MESSAGE_AFTER_END))
            return
        if command is not None and command.command is not Command.SKIP and self.command(command):
            return
        flow = self.flow()
        step = flow.steps[self.state.step]
        if self.state.survey is not None:
            survey.answer(self, flow, step, inbound, command)
        elif step.is_choice:
            self.answer_choice(flow, step, inbound)
        elif step.input is not None:
            self.answer_input(flow, step, inbound, command)
        else:
            self.fail(lambda: self.say_key("common.passed_to_staff"))


@dataclass(frozen=True, slots=True)
class Screened:
    """The safety rules' reading of the inbound's text, when the caller has already run them (the backend
    screens every message for emergencies before the bot's turn): the engine does not read it twice."""

    hit: SafetyHit | None


def take_turn(
    flow: Flow,
    state: ConversationState | None,
    inbound: Inbound,
    lang: str,
    catalog: Catalog,
    understand: Understand | None = None,
    *,
    library: Any = None,
    ports: Ports | None = None,
    message_lang: str | None = None,
    screened: Screened | None = None,
) -> TurnResult:
    lib = library if library is not None else SingleFlow(flow)
    today = inbound.received_at.date()
    if state is None:
        turn = _Turn(lib, ports or Ports(), catalog, understand, message_lang or lang, today)
        turn.result = TurnResult(ConversationState(flow.id, flow.version, flow.start))
        turn.run_from(flow, flow.start)
        return turn.result
    turn = _Turn(
        lib, ports or Ports(), catalog, understand, pick_language(message_lang or state.lang or lang), today
    )
    turn.result = TurnResult(state.copy())
    turn.screened = screened
    if inbound.kind is InboundKind.CONVERSATION_STARTED:
        if turn.state.survey is not None and not turn.state.ended:
            survey.offer_resume(turn, turn.flow().steps[turn.state.step])
        return turn.result  # the page was opened again: nothing new to say (unless a survey waits)
    turn.reply_to(inbound)
    return turn.result


def hand_over(state: ConversationState) -> ConversationState:
    """The state stopped for staff, as a hand-off stops it: a survey in progress is kept to resume."""
    stopped = state.copy()
    survey.save(stopped)
    stopped.ended = True
    return stopped
