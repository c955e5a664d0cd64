"""Questionnaires over chat (skip, re-prompt, resume), global commands, safety first, flow versions."""

from __future__ import annotations

import pytest

from bots.domain import ConsentPurpose
from bots.effects import CompleteSurvey, HandoffReason, RequestHandoff, RevokeConsent, SetLanguage
from bots.flows import parse_flow
from bots.messages import InboundKind
from bots.ports import DictLibrary
from tests.bots.driver import CATALOG, Chat, World, authored_flows, choices, texts


def survey_chat(qid: str = "nps") -> Chat:
    chat = Chat(world=World(surveys=[(qid, qid)]))
    chat.press("survey")
    chat.press(qid)
    return chat


def test_a_survey_runs_item_by_item_and_completes_with_its_answers() -> None:
    chat = survey_chat()
    assert texts(chat.last.replies)[-1].startswith("(1/2) How likely are you to recommend")
    chat.say("eleven")  # out of range: the questionnaire engine's re-prompt, then the question again
    assert "0 to 10" in texts(chat.last.replies)[0]
    chat.say("9")
    assert texts(chat.last.replies)[-1].startswith("(2/2) What is the main reason")
    assert choices(chat.last.replies) == ["__skip"]  # not required: may be skipped
    chat.press("__skip")
    assert chat.effects == [CompleteSurvey("nps", 1, {"recommend": 9}, ("reason",))]
    assert "Thank you for your feedback!" in texts(chat.last.replies)
    assert chat.where == ("main_menu", "menu")


def test_a_required_item_cannot_be_skipped() -> None:
    chat = survey_chat()
    chat.say("skip")
    assert texts(chat.last.replies)[0] == "This question needs an answer; it cannot be skipped."
    assert chat.state is not None and chat.state.failures == 0


def test_two_rejected_answers_hand_off_and_keep_the_progress() -> None:
    chat = survey_chat("outpatient_satisfaction")
    chat.say("1")
    chat.say("banana")
    chat.say("banana")
    assert chat.effects == [RequestHandoff(HandoffReason.CLARIFICATION_FAILED)]
    assert chat.state is not None and chat.state.saved_surveys["outpatient_satisfaction"]["answers"]


def test_leaving_a_survey_for_the_menu_and_coming_back_offers_to_continue() -> None:
    chat = survey_chat("outpatient_satisfaction")
    for answer in ("1", "2"):
        chat.say(answer)
    chat.press("__skip")  # test_waiting is optional
    chat.say("menu")
    assert chat.where == ("main_menu", "menu")
    chat.press("survey")
    chat.press("outpatient_satisfaction")
    assert texts(chat.last.replies) == ["You were on question 4 of 11. Continue where you stopped?"]
    chat.press("continue")
    assert texts(chat.last.replies)[-1].startswith("(4/11)")
    chat.say("menu")
    chat.press("survey")
    chat.press("outpatient_satisfaction")
    chat.say("Start again")
    assert texts(chat.last.replies)[-1].startswith("(1/11)")


def test_reopening_the_page_mid_survey_offers_to_continue() -> None:
    chat = survey_chat()
    chat.turn(kind=InboundKind.CONVERSATION_STARTED)
    assert texts(chat.last.replies) == ["You were on question 1 of 2. Continue where you stopped?"]
    chat.say("yes")
    assert texts(chat.last.replies)[-1].startswith("(1/2)")


def test_an_unknown_questionnaire_is_said_and_the_flow_goes_on() -> None:
    chat = Chat(world=World(surveys=[("gone", "Gone")]))
    chat.press("survey")
    chat.press("gone")
    assert "not available" in texts(chat.last.replies)[0]


def test_help_explains_and_asks_the_same_question_again() -> None:
    chat = Chat("feedback")
    chat.say("帮助")
    assert texts(chat.last.replies)[0].startswith("You can answer with the number")
    assert chat.where == ("feedback", "kind") and choices(chat.last.replies) == [
        "complaint",
        "praise",
        "suggestion",
    ]


def test_language_by_name_or_by_question_switches_and_re_asks() -> None:
    chat = Chat("feedback")
    chat.say("Tiếng Việt")
    assert chat.effects == [SetLanguage("vi")]
    assert (
        texts(chat.last.replies)[-1]
        == "Cảm ơn bạn đã dành thời gian. Đây là khiếu nại, lời khen hay đề xuất?"
    )
    chat.say("ngôn ngữ")
    assert choices(chat.last.replies) == ["zh-CN", "vi", "en"]
    chat.say("1")
    assert chat.state is not None and chat.state.lang == "zh-CN"
    assert texts(chat.last.replies)[-1] == "感谢您抽出时间。请问是投诉、表扬还是建议？"


def test_the_welcome_ends_with_the_menu_whatever_the_answer_to_consent() -> None:
    for answer in ("yes", "no"):
        chat = Chat("welcome")
        chat.press(answer)
        assert chat.where == ("main_menu", "menu") and chat.state is not None and not chat.state.ended
        said = texts(chat.last.replies)
        assert said[-1] == CATALOG.text("en", "menu.prompt") and len(said) == 2  # thanks, then the menu
        assert len(choices(chat.last.replies)) == 9


def test_menu_works_in_any_flow_and_after_the_end() -> None:
    chat = Chat("welcome")
    chat.press("yes")
    chat.press("bye")  # the menu's goodbye is the only end that stays an end
    assert chat.state is not None and chat.state.ended
    chat.say("菜单")
    assert chat.where == ("main_menu", "menu") and not chat.state.ended


@pytest.mark.parametrize("lang", ["en", "zh-CN", "vi"])
def test_after_the_end_any_message_is_answered_by_the_menu_not_by_staff(lang: str) -> None:
    chat = Chat("welcome", lang=lang)
    chat.press("yes")
    chat.press("bye")
    chat.say("hello again")
    assert chat.last.effects == [] and chat.where == ("main_menu", "menu")
    assert texts(chat.last.replies) == [CATALOG.text(lang, "menu.prompt")]
    chat.press("bye")
    chat.say("7")  # a digit picks that option of the menu straight away
    assert chat.where == ("faq", "topics") and chat.last.effects == []
    assert not any(isinstance(e, RequestHandoff) for e in chat.effects)


def test_a_digit_picks_a_menu_option_after_every_finished_flow() -> None:
    chat = Chat("consent", world=World(consents=[]))  # ends at once (no record yet): the menu waits
    chat.say("5")
    assert chat.where == ("feedback", "kind") and chat.effects == []


def test_safety_comes_before_commands_and_answers() -> None:
    chat = Chat("feedback")
    chat.press("complaint")
    chat.press("none")
    chat.say("I can't breathe")  # a text input would take anything: the emergency rule still wins
    assert chat.effects == [RequestHandoff(HandoffReason.EMERGENCY)]
    chat = Chat("feedback")
    chat.say("STOP")
    assert chat.effects == [RevokeConsent(ConsentPurpose.CARE)]


def test_a_conversation_finishes_on_the_version_it_started_with() -> None:
    v1 = parse_flow(
        {
            "id": "faq", "version": 1, "start": "topics",
            "steps": {
                "topics": {"say": "faq.ask", "reprompt": "faq.reprompt", "choices": [{"id": "p", "label": "faq.topic_parking", "next": "parking"}]},  # noqa: E501
                "parking": {"say": "faq.parking", "end": True},
            },
        }
    )  # fmt: skip
    v2 = parse_flow(
        {
            "id": "faq", "version": 2, "start": "topics",
            "steps": {
                "topics": {"say": "faq.ask", "reprompt": "faq.reprompt", "choices": [{"id": "b", "label": "faq.topic_billing", "next": "billing"}]},  # noqa: E501
                "billing": {"say": "faq.billing", "end": True},
            },
        }
    )  # fmt: skip
    chat = Chat(v1, library=DictLibrary.of(v1))
    chat.library = DictLibrary.of(v1, v2)  # version 2 is authored while the conversation waits
    chat.press("p")
    assert chat.state is not None and chat.state.ended
    assert chat.visits == [("faq", 1, "topics"), ("faq", 1, "parking")]
    fresh = Chat(v2, library=DictLibrary.of(v1, v2))
    assert choices(fresh.last.replies) == ["b"]


def test_every_authored_flow_has_its_messages_in_every_language_and_its_sub_flows_exist() -> None:
    from bots.domain import LANGUAGES
    from tests.bots.driver import CATALOG

    flows = authored_flows()
    ids = {f.id for f in flows}
    keys: set[str] = set()
    for f in flows:
        keys |= f.message_keys()
        assert f.sub_flows() <= ids, f.id
    keys |= {"common.help", "common.language_question", "common.language_set", "common.skip", "common.yes"}
    CATALOG.check_complete(keys)
    for lang in LANGUAGES:
        CATALOG.text(lang, "common.survey_resume", position=3, total=8)
