"""Every step kind of the engine, turn by turn, on the authored flows and small inline ones."""

from __future__ import annotations

from typing import Any

import pytest

from bots.domain import ConsentPurpose
from bots.effects import (
    FeedbackKind,
    GrantConsent,
    HandoffReason,
    RequestHandoff,
    RevokeConsent,
    SetLanguage,
    SubmitFeedback,
)
from bots.engine import ConversationState, take_turn
from bots.flows import FlowError, parse_flow
from bots.ports import DictLibrary, Reading
from tests.bots.driver import CATALOG, Chat, World, choices, inbound, texts, understands


def flow(steps: dict[str, Any], flow_id: str = "f", version: int = 1, start: str = "a") -> Any:
    return parse_flow({"id": flow_id, "version": version, "start": start, "steps": steps})


# --- main menu routing ---------------------------------------------------------------------------


def test_the_menu_lists_every_sub_flow_and_routes_by_number_label_or_button() -> None:
    chat = Chat()
    assert choices(chat.last.replies) == [
        "register", "book", "appointments", "consent", "feedback", "survey", "faq", "human", "bye"
    ]
    chat.say("5")
    assert chat.where == ("feedback", "kind")
    chat = Chat()
    chat.say("Give feedback")
    assert chat.where == ("feedback", "kind")
    chat = Chat()
    chat.press("faq")
    assert chat.where == ("faq", "topics")


def test_free_text_is_routed_by_rasa_intent_and_the_sub_flow_uses_it() -> None:
    understand = understands(
        {
            "the nurse was rude to me": Reading("complain", (("department", "cardiology"),)),
            "where do I park": "faq_parking",
        }
    )
    chat = Chat(understand=understand)
    chat.say("the nurse was rude to me")
    assert chat.where == ("feedback", "department")  # the kind is known: not asked again
    assert chat.state is not None and chat.state.slots["feedback_kind"] == "complaint"
    assert chat.state.slots["entities"] == {"department": "cardiology"}
    chat = Chat(understand=understand)
    reply = chat.say("where do I park")
    assert any("car park" in t for t in texts(reply.replies))
    assert chat.where == ("faq", "more")


def test_an_intent_no_option_takes_is_a_failed_clarification() -> None:
    chat = Chat(understand=understands({"my knee hurts": "report_symptom"}))
    chat.say("my knee hurts")
    assert chat.where == ("main_menu", "menu") and chat.state is not None and chat.state.failures == 1
    assert texts(chat.last.replies) == [
        "Sorry, I did not understand. Please reply with the number of an option."
    ]


def test_a_sub_flow_returns_to_the_menu_and_bye_ends() -> None:
    chat = Chat()
    chat.press("faq")
    chat.press("parking")
    chat.press("no")
    assert chat.where == ("main_menu", "menu")
    assert chat.state is not None and chat.state.stack == []
    chat.press("bye")
    assert chat.state.ended and texts(chat.last.replies) == [
        "Thank you. Write MENU whenever you need me again."
    ]


def test_asking_for_a_person_from_the_menu_hands_off() -> None:
    chat = Chat()
    chat.press("human")
    assert chat.effects == [RequestHandoff(HandoffReason.ASKED_FOR_HUMAN)]
    assert chat.state is not None and chat.state.ended


def test_sub_flow_without_a_return_step_ends_the_conversation() -> None:
    main = flow(
        {
            "a": {
                "say": "menu.prompt",
                "reprompt": "menu.reprompt",
                "choices": [{"id": "x", "label": "menu.faq", "flow": "sub"}],
            }
        }
    )
    sub = flow({"s": {"say": "faq.parking", "end": True}}, flow_id="sub", start="s")
    chat = Chat(main, library=DictLibrary.of(main, sub))
    chat.press("x")
    assert chat.state is not None and chat.state.ended and chat.state.stack == []


# --- typed input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "value", "bad"),
    [
        ("phone", "+84 912-345 678", "+84912345678", "call me"),
        ("phone", "１３８ ０００ ８０００", "1380008000", "12"),
        ("birth_date", "1980-01-31", "1980-01-31", "2099-01-01"),
        ("birth_date", "19800131", "1980-01-31", "1800-01-01"),
        ("mrn", "t 000123", "T000123", "??"),
        ("yes_no", "yes", True, "perhaps"),
        ("yes_no", "không", False, "🙂"),
        ("number", "about five", "5", "five or six"),
        ("date", "2026-11-20", "2026-11-20", "whenever"),
        ("text", "  the food was cold  ", "the food was cold", "   "),
    ],
)
def test_input_steps_store_a_json_value_or_re_ask(kind: str, good: str, value: Any, bad: str) -> None:
    steps = {
        "a": {
            "say": "reg.ask_phone",
            "reprompt": "reg.phone_reprompt",
            "input": kind,
            "store": "v",
            "next": "b",
        },
        "b": {"say": "reg.done", "end": True},
    }
    chat = Chat(flow(steps), library=DictLibrary.of(flow(steps)))
    chat.say(bad)
    assert chat.where == ("f", "a") and texts(chat.last.replies) == [CATALOG.text("en", "reg.phone_reprompt")]
    chat.say(good)
    assert chat.state is not None and chat.state.slots["v"] == value and chat.state.ended


def test_text_input_refuses_more_than_its_limit() -> None:
    steps = {
        "a": {
            "say": "fb.ask_text",
            "reprompt": "fb.text_reprompt",
            "input": "text",
            "max_length": 10,
            "store": "v",
            "next": "b",
        },
        "b": {"say": "fb.thanks", "end": True},
    }
    chat = Chat(flow(steps), library=DictLibrary.of(flow(steps)))
    chat.say("x" * 11)
    assert chat.where == ("f", "a")
    chat.say("x" * 10)
    assert chat.state is not None and chat.state.slots["v"] == "x" * 10


def test_two_unreadable_inputs_hand_off() -> None:
    chat = Chat("registration")
    chat.press("phone")
    chat.say("no idea")
    chat.say("still no idea")
    assert chat.effects[-1] == RequestHandoff(HandoffReason.CLARIFICATION_FAILED)
    assert chat.state is not None and chat.state.ended


def test_optional_input_can_be_skipped_by_button_or_word() -> None:
    steps = {
        "a": {
            "say": "fb.ask_text",
            "reprompt": "fb.text_reprompt",
            "input": "number",
            "optional": True,
            "store": "v",
            "next": "b",
        },
        "b": {"say": "fb.thanks", "end": True},
    }
    for how in ({"choice": "__skip"}, {"text": "跳过"}, {"text": "skip"}):
        chat = Chat(flow(steps), library=DictLibrary.of(flow(steps)))
        assert "__skip" in choices(chat.last.replies)
        chat.turn(**how)
        assert chat.state is not None and chat.state.ended and chat.state.slots["v"] is None


def test_yes_no_input_offers_buttons_and_reads_rasa_when_words_fail() -> None:
    chat = Chat("feedback", understand=understands({"sure, keep my name out of it": "affirm"}))
    chat.press("praise")
    chat.press("none")
    chat.say("Dr Lan explained everything")
    assert choices(chat.last.replies) == ["yes", "no"]
    chat.say("sure, keep my name out of it")
    assert chat.effects == [SubmitFeedback(FeedbackKind.PRAISE, "Dr Lan explained everything", True, None)]


# --- dynamic choices, actions, branches --------------------------------------------------------------


def test_dynamic_choices_come_from_the_port_and_the_chosen_id_is_stored() -> None:
    chat = Chat("feedback")
    chat.press("complaint")
    assert choices(chat.last.replies) == ["7", "9", "none"]
    chat.say("2")  # the second option shown: Surgery
    assert chat.state is not None and chat.state.slots["department"] == "9"
    assert chat.state.slots["department_label"] == "Surgery"
    chat.say("It took three hours")
    chat.say("no")
    assert chat.effects == [SubmitFeedback(FeedbackKind.COMPLAINT, "It took three hours", False, 9)]
    assert "feedback_text" not in chat.state.slots  # forgotten once submitted


def test_an_empty_source_goes_to_the_empty_step() -> None:
    chat = Chat("consent", world=World(consents=[]))
    said = texts(chat.last.replies)
    assert said[0].startswith("I do not know your hospital record yet")
    assert chat.where == ("main_menu", "menu")  # the flow ended: the menu is offered, not a dead end


def test_consent_flow_grants_and_revokes_the_chosen_purpose() -> None:
    world = World(
        consents=[("care", "Care: given"), ("marketing", "News: never"), ("research", "Research: never")]
    )
    chat = Chat("consent", world=world)
    chat.press("research")
    assert texts(chat.last.replies)[0].startswith("Research means")
    chat.press("grant")
    chat2 = Chat("consent", world=world)
    chat2.say("2")
    chat2.say("Withdraw consent")
    assert chat.effects == [GrantConsent(ConsentPurpose.RESEARCH)]
    assert chat2.effects == [RevokeConsent(ConsentPurpose.MARKETING)]


@pytest.mark.parametrize(
    ("outcome", "where"),
    [
        ("bound", ("registration", "language")),
        ("not_found", ("registration", "retry")),
        ("refused", None),
        ("throttled", None),
    ],
)
def test_registration_follows_the_action_outcome_and_forgets_identifiers(outcome: str, where: Any) -> None:
    world = World(identify_outcome=outcome)
    chat = Chat("registration", world=world)
    chat.press("mrn")
    chat.say("T000123")
    chat.say("1980-01-31")
    assert world.calls[0] == ("identify_patient", {"mrn": "T000123", "birth_date": "1980-01-31"})
    assert chat.state is not None
    assert not {"phone", "mrn", "birth_date"} & set(chat.state.slots)
    if where is None:  # registration ended: the menu is offered
        assert chat.where == ("main_menu", "menu") and not chat.state.ended
    else:
        assert chat.where == where


def test_registration_sets_language_and_preferred_channel() -> None:
    world = World()
    chat = Chat("registration", world=world)
    chat.press("phone")
    chat.say("0912345678")
    chat.say("31/01/1980")
    chat.say("2")  # Tiếng Việt
    assert chat.effects == [SetLanguage("vi")]
    assert texts(chat.last.replies) == ["Bạn muốn chúng tôi liên hệ qua kênh nào?"]
    chat.press("wechat")
    assert world.calls[-1] == (
        "set_preferred_channel",
        {"preferred_channel": "wechat", "preferred_channel_label": "WeChat"},
    )
    assert chat.state is not None and chat.state.slots == {}
    assert chat.where == ("main_menu", "menu") and chat.state.lang == "vi"


def test_an_action_outcome_with_no_step_is_an_authoring_error() -> None:
    steps = {
        "a": {"action": "identify_patient", "outcomes": {"bound": "b"}},
        "b": {"say": "reg.done", "end": True},
    }
    with pytest.raises(FlowError, match="no step for outcome 'not_found'"):
        Chat(flow(steps), library=DictLibrary.of(flow(steps)), world=World(identify_outcome="not_found"))


def test_an_authored_loop_is_stopped() -> None:
    steps = {"a": {"set": {"x": 1}, "next": "b"}, "b": {"set": {"x": 2}, "next": "a"}}
    with pytest.raises(FlowError, match="a loop"):
        Chat(flow(steps), library=DictLibrary.of(flow(steps)))


# --- flow files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            {"a": {"say": "x", "input": "colour", "store": "v", "next": "a", "reprompt": "r"}},
            "unknown input 'colour'",
        ),
        ({"a": {"say": "x", "input": "text", "reprompt": "r", "next": "a"}}, "needs a store slot"),
        ({"a": {"say": "x", "input": "text", "store": "v", "reprompt": "r"}}, "an input needs a next step"),
        ({"a": {"action": "go"}}, "needs outcomes or a next step"),
        ({"a": {"action": "go", "outcomes": {"ok": "zz"}}}, "unknown step 'zz'"),
        (
            {"a": {"branch": "v", "input": "text", "store": "v", "reprompt": "r", "next": "a"}},
            "a step is one of",
        ),
        (
            {"a": {"say": "x", "reprompt": "r", "choices": [{"id": "y", "label": "l"}]}},
            "needs a next step or a flow",
        ),
        (
            {"a": {"say": "x", "reprompt": "r", "choices_from": "d", "store": "v"}},
            "choices_from needs a next step",
        ),
        ({"a": {"say": "x", "end": True, "effects": [{"handoff": "now"}]}}, "takes a mapping"),
    ],
)
def test_malformed_new_step_kinds_are_refused(steps: dict[str, Any], message: str) -> None:
    with pytest.raises(FlowError, match=message):
        flow(steps)


def test_state_from_before_these_fields_still_loads() -> None:
    old = {"flow_id": "welcome", "flow_version": 1, "step": "consent", "failures": 0, "ended": False}
    state = ConversationState.from_json(old)
    assert state.slots == {} and state.stack == [] and state.survey is None


def test_without_a_library_the_single_flow_still_runs() -> None:
    steps = {
        "a": {
            "say": "reg.ask_mrn",
            "reprompt": "reg.mrn_reprompt",
            "input": "mrn",
            "store": "m",
            "next": "b",
        },
        "b": {"say": "reg.done", "end": True},
    }
    one = flow(steps)
    first = take_turn(one, None, inbound(), "en", CATALOG)
    second = take_turn(one, first.state, inbound("A12345"), "en", CATALOG)
    assert second.state.ended and second.state.slots == {"m": "A12345"}
