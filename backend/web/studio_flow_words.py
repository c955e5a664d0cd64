"""The flow editor's words for what it shows: how a step goes to another ("choice yes") and every problem
the flow kind and the loader find (by their codes), in the editor's language. The flow's own names (steps,
choices, outcomes, text keys, slots) are data: shown as code, never translated."""

from __future__ import annotations

from markupsafe import Markup

from backend.content.kinds import Problem
from backend.i18n import translations


def _how(how: str, lang: str) -> tuple[str, str]:
    """How a step goes to another (flows.targets' words: "next", "choice yes", "outcome booked") as the
    editor's words and the flow's own name ("" for none)."""
    _ = translations(lang).gettext
    kind, _sep, name = how.partition(" ")
    if kind == "choice":
        return _("choice"), name
    if kind == "outcome":
        return _("outcome"), name
    return {"next": _("next step"), "empty": _("when there is nothing to choose")}.get(how, how), ""


def how_text(how: str, lang: str) -> str:
    word, name = _how(how, lang)
    return f"{word} {name}" if name else word


def _code(name: str) -> Markup:
    # names from the flow (steps, choices, outcomes, text keys) are data: never translated
    return Markup('<code translate="no">{}</code>').format(name)


def how_html(how: str, lang: str) -> Markup:
    word, name = _how(how, lang)
    return Markup("{} {}").format(word, _code(name)) if name else Markup.escape(word)


def kind_names(lang: str) -> dict[str, str]:
    """Each kind of step (flow_form.KINDS) in the editor's words."""
    _ = translations(lang).gettext
    return {
        "say": _("Says and goes on"),
        "choice": _("Choice"),
        "input": _("Input"),
        "action": _("Action"),
        "branch": _("Branch"),
        "questionnaire": _("Questionnaire"),
    }


def _said(problem: Problem, lang: str) -> str:
    _ = translations(lang).gettext
    return {
        "unknown_step": _("goes to a step that does not exist"),
        "unreachable": _("no step leads here"),
        "loop_without_exit": _("a loop with no way out: the patient could never leave it"),
        "missing_text": _("no published text has this key"),
        "unknown_action": _("no action has this name"),
        "unknown_source": _("no list of choices has this name"),
        "unknown_intent": _("the language understanding knows no intent of this name"),
        "unknown_flow": _("no flow has this name"),
        "slot_never_read": _("this slot is set but nothing in the flow reads it"),
        # the loader's own problems, by code
        "definition": _("the flow cannot be read"),
        "not_mapping": _("a flow must be a mapping of its fields"),
        "no_id": _("the flow has no name"),
        "needs_start_steps": _("a flow needs a version, a first step and steps"),
        "steps_shape": _("the steps must be a mapping of names to steps"),
        "step_shape": _("a step must be a mapping of its fields"),
        "effect_shape": _("an effect is one name with its arguments, one per line"),
        "unknown_effect": _("there is no effect of this name"),
        "effect_arguments": _("this effect's arguments must be name=value pairs"),
        "consent_purpose": _("this effect needs purpose=care, marketing or research"),
        "choice_id_label": _("a choice needs an id and a label"),
        "unknown_input": _("there is no input of this kind"),
        "outcomes_shape": _("outcomes must each name a step"),
        "set_shape": _("slots to set are one per line: slot = value"),
        "not_a_list": _("this field must be a list"),
        "max_length": _("the longest answer must be a whole number above 0"),
        "unknown_start": _("the first step does not exist"),
        "unknown_target": _("goes to a step that does not exist"),
        "one_kind": _("a step is one of a choice, an input, an action, a branch or a questionnaire"),
        "needs_reprompt": _("a question needs a text to ask again with"),
        "input_needs_next": _("an input needs a next step"),
        "needs_store": _("an input or a list of choices needs a slot to keep the answer in"),
        "needs_outcomes": _("an action or branch needs outcomes or a next step"),
        "choices_from_needs_next": _("a list of choices needs a next step for the chosen option"),
        "choice_needs_target": _("this choice needs a next step or a flow to run"),
        "goes_nowhere": _("this step neither asks, ends nor goes to a next step"),
        "says_nothing": _("this step says nothing and does nothing"),
    }.get(problem.code, "")


def problem_text(problem: Problem, lang: str) -> str:
    """A problem in the editor's words, as plain text (the live check's answer)."""
    said, detail = _said(problem, lang), problem.detail
    if problem.code == "unknown_step" and " → " in detail:
        how, _arrow, target = detail.partition(" → ")
        detail = f"{how_text(how, lang)} → {target}"
    elif problem.code == "unknown_step" and detail.startswith("start: "):
        detail = f"{translations(lang).gettext('First step')} → {detail[len('start: ') :]}"
    return f"{said}: {detail}" if said and detail else said or detail


def problem_html(problem: Problem, lang: str) -> Markup:
    """The same for the page, the flow's names marked as data."""
    said, detail = _said(problem, lang), problem.detail
    if problem.code == "unknown_step" and " → " in detail:
        how, _arrow, target = detail.partition(" → ")
        shown = Markup("{} → {}").format(how_html(how, lang), _code(target))
    elif problem.code == "unknown_step" and detail.startswith("start: "):
        first = translations(lang).gettext("First step")
        shown = Markup("{} → {}").format(first, _code(detail[len("start: ") :]))
    else:
        shown = _code(detail) if detail else Markup("")
    return Markup("{}: {}").format(said, shown) if said and detail else Markup.escape(said) or shown
