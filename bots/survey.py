"""A questionnaire step over chat: items one by one through the questionnaire engine, skip, re-prompt, resume.

Answers live in the conversation state as questionnaires.values JSON, so a survey left mid-way (menu,
STOP, hand-off, a closed page) resumes where it stopped: "you were on question 3 of 8 - continue?".
The finished survey is one `CompleteSurvey` effect; the backend stores and scores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bots.commands import Command, CommandHit
from bots.effects import CompleteSurvey
from bots.flows import Flow, Step
from bots.messages import Choice, Choices, Inbound, Text
from bots.state import ConversationState
from nlu.parsing import parse_yes_no
from questionnaires.answers import Accepted, accept, can_skip
from questionnaires.logic import next_item, progress
from questionnaires.model import AnswerValue, Item, Questionnaire
from questionnaires.options import match_choice
from questionnaires.values import from_json, to_json

if TYPE_CHECKING:
    from bots.engine import _Turn

SKIP = "__skip"
CONTINUE, RESTART = "continue", "restart"


def _texts(texts: Any, lang: str) -> str:
    return str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), ""))


def questionnaire_id(turn: _Turn, step: Step) -> str:
    return str(turn.slot(step.questionnaire))


def _definition(turn: _Turn, qid: str) -> Questionnaire | None:
    return turn.ports.surveys.questionnaire(qid) if turn.ports.surveys is not None else None


def _answers(q: Questionnaire, raw: dict[str, Any]) -> dict[str, AnswerValue]:
    return {key: from_json(q.item(key), value) for key, value in raw.items()}


def save(state: ConversationState) -> None:
    """Keep a survey in progress for later (the patient left it); nothing to keep when unanswered."""
    current = state.survey
    if current is not None and (current["answers"] or current["skipped"]):
        state.saved_surveys[current["questionnaire"]] = {**current, "resume": False}
    state.survey = None


def start(turn: _Turn, step: Step) -> bool:
    """Begin (or offer to resume) the step's questionnaire; True when there is nothing to ask."""
    qid = questionnaire_id(turn, step)
    q = _definition(turn, qid)
    if q is None:
        turn.say_key("common.survey_unavailable")
        return True
    saved = turn.state.saved_surveys.pop(qid, None)
    if saved is not None:
        turn.state.survey = saved
        offer_resume(turn, step)
        return False
    turn.state.survey = {
        "questionnaire": qid,
        "version": q.version,
        "answers": {},
        "skipped": [],
        "resume": False,
    }
    if q.intro:
        turn.say(Text(_texts(q.intro, turn.lang)))
    return not ask(turn, step)


def _position(q: Questionnaire, current: dict[str, Any]) -> tuple[int, int]:
    return progress(q, _answers(q, current["answers"]), frozenset(current["skipped"]))


def offer_resume(turn: _Turn, step: Step) -> None:
    current = turn.state.survey
    assert current is not None
    q = _definition(turn, current["questionnaire"])
    if q is None:
        turn.state.survey = None
        return
    current["resume"] = True
    position, total = _position(q, current)
    turn.say(
        Text(turn.catalog.text(turn.lang, "common.survey_resume", position=position, total=total)),
        Choices(
            (
                Choice(CONTINUE, turn.text("common.survey_continue")),
                Choice(RESTART, turn.text("common.survey_restart")),
            )
        ),
    )


def _item(turn: _Turn) -> tuple[Questionnaire, Item | None]:
    current = turn.state.survey
    assert current is not None
    q = _definition(turn, current["questionnaire"])
    assert q is not None
    return q, next_item(q, _answers(q, current["answers"]), frozenset(current["skipped"]))


def ask(turn: _Turn, step: Step) -> bool:
    """Ask the next item with its position and options; False when every item is done."""
    current = turn.state.survey
    assert current is not None
    q, item = _item(turn)
    if item is None:
        return False
    position, total = _position(q, current)
    head = turn.catalog.text(turn.lang, "common.survey_progress", position=position, total=total)
    parts: list[Text | Choices] = [Text(f"{head} {_texts(item.text, turn.lang)}")]
    options = [Choice(o.code, _texts(o.text, turn.lang)) for o in item.options]
    if can_skip(item):
        options.append(Choice(SKIP, turn.text("common.skip")))
    if options:
        parts.append(Choices(tuple(options)))
    turn.say(*parts)
    return True


def _finish(turn: _Turn, flow: Flow, step: Step) -> None:
    current = turn.state.survey
    assert current is not None
    q = _definition(turn, current["questionnaire"])
    turn.result.effects.append(
        CompleteSurvey(
            current["questionnaire"],
            current.get("version"),
            dict(current["answers"]),
            tuple(current["skipped"]),
        )
    )
    turn.state.survey = None
    if q is not None and q.outro:
        turn.say(Text(_texts(q.outro, turn.lang)))
    turn.continue_to(flow, None if step.end else step.next)


def _resume_answer(turn: _Turn, flow: Flow, step: Step, inbound: Inbound) -> None:
    current = turn.state.survey
    assert current is not None
    labels = [(CONTINUE, turn.text("common.survey_continue")), (RESTART, turn.text("common.survey_restart"))]
    picked: str | None = inbound.choice if inbound.choice in {CONTINUE, RESTART} else None
    if picked is None and inbound.choice is None:
        index = match_choice(labels, inbound.text, turn.lang)
        yes_no = parse_yes_no(inbound.text) if index is None else None
        picked = (
            [CONTINUE, RESTART][index]
            if index is not None
            else {True: CONTINUE, False: RESTART}.get(
                yes_no  # type: ignore[arg-type]
            )
        )
    if picked is None:
        turn.fail(lambda: offer_resume(turn, step))
        return
    current["resume"] = False
    if picked == RESTART:
        current["answers"], current["skipped"] = {}, []
    if not ask(turn, step):
        _finish(turn, flow, step)


def answer(turn: _Turn, flow: Flow, step: Step, inbound: Inbound, command: CommandHit | None) -> None:
    current = turn.state.survey
    assert current is not None
    if current.get("resume"):
        _resume_answer(turn, flow, step, inbound)
        return
    _, item = _item(turn)
    if item is None:
        _finish(turn, flow, step)
        return
    skipping = inbound.choice == SKIP or (command is not None and command.command is Command.SKIP)
    if skipping:
        if not can_skip(item):
            turn.say_key("common.survey_required")
            ask(turn, step)
            return
        current["skipped"] = [*current["skipped"], item.id]
    else:
        assert turn.ports.surveys is not None
        verdict = accept(
            item,
            inbound.text,
            turn.lang,
            today=turn.today,
            messages=turn.ports.surveys.answer_messages(),
            payload=inbound.choice,
        )
        if not isinstance(verdict, Accepted):
            reprompt = verdict.reprompt

            def again() -> None:
                turn.say(Text(reprompt))
                ask(turn, step)

            turn.fail(again)
            return
        current["answers"] = {**current["answers"], item.id: to_json(item, verdict.value)}
    turn.state.failures = 0
    if not ask(turn, step):
        _finish(turn, flow, step)
