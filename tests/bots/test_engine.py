"""The welcome flow, turn by turn, in every language: replies, state and effects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bots.catalog import Catalog
from bots.domain import LANGUAGES, Channel, ConsentPurpose
from bots.effects import GrantConsent, HandoffReason, RequestHandoff, RevokeConsent
from bots.engine import ConversationState, take_turn
from bots.flows import parse_flow
from bots.messages import Choices, Inbound, InboundKind

CONTENT = Path(__file__).resolve().parents[2] / "content" / "dialogues"
FLOW = parse_flow(yaml.safe_load((CONTENT / "welcome.yaml").read_text()))
CATALOG = Catalog.merge(
    {lang: yaml.safe_load((CONTENT / "messages" / f"{lang}.yaml").read_text()) for lang in LANGUAGES},
    defaults={"hospital": "Test Hospital"},
)
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def inbound(text: str = "", choice: str | None = None, kind: InboundKind = InboundKind.MESSAGE) -> Inbound:
    return Inbound(Channel.WEBCHAT, "web:1", f"id-{text}-{choice}", T0, text=text, choice=choice, kind=kind)


def started(lang: str = "en") -> ConversationState:
    return take_turn(FLOW, None, inbound(kind=InboundKind.CONVERSATION_STARTED), lang, CATALOG).state


def test_catalog_has_every_message_of_the_flow_in_every_language() -> None:
    CATALOG.check_complete(
        FLOW.message_keys() | {"common.passed_to_staff", "common.emergency", "common.stopped"}
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_first_turn_greets_and_asks_consent_with_two_buttons(lang: str) -> None:
    result = take_turn(FLOW, None, inbound(kind=InboundKind.CONVERSATION_STARTED), lang, CATALOG)
    assert [r.text for r in result.replies] == [
        CATALOG.text(lang, "welcome.greeting"),
        CATALOG.text(lang, "welcome.consent_question"),
    ]
    assert "Test Hospital" in result.replies[0].text
    choices = [p for p in result.replies[1].parts if isinstance(p, Choices)]
    assert [c.payload for c in choices[0].options] == ["yes", "no"]
    assert result.state.step == "consent" and not result.state.ended
    assert result.effects == []


@pytest.mark.parametrize(
    ("lang", "text", "choice", "expected"),
    [
        ("en", "", "yes", GrantConsent(ConsentPurpose.CARE)),
        ("en", "", "no", RevokeConsent(ConsentPurpose.CARE)),
        ("en", "1", None, GrantConsent(ConsentPurpose.CARE)),
        ("en", "２", None, RevokeConsent(ConsentPurpose.CARE)),  # full-width digit
        ("en", "Yes, I agree", None, GrantConsent(ConsentPurpose.CARE)),
        ("en", "yes!", None, GrantConsent(ConsentPurpose.CARE)),
        ("en", "nope", None, RevokeConsent(ConsentPurpose.CARE)),
        ("zh-CN", "同意", None, GrantConsent(ConsentPurpose.CARE)),
        ("zh-CN", "好的。", None, GrantConsent(ConsentPurpose.CARE)),
        ("zh-CN", "不同意", None, RevokeConsent(ConsentPurpose.CARE)),
        ("vi", "Có, tôi đồng ý", None, GrantConsent(ConsentPurpose.CARE)),
        ("vi", "vâng", None, GrantConsent(ConsentPurpose.CARE)),
        ("vi", "không", None, RevokeConsent(ConsentPurpose.CARE)),
        ("vi", "同意", None, GrantConsent(ConsentPurpose.CARE)),  # patients mix languages
    ],
)
def test_consent_answer_is_understood_and_thanked(
    lang: str, text: str, choice: str | None, expected: object
) -> None:
    result = take_turn(FLOW, started(lang), inbound(text, choice), lang, CATALOG)
    assert result.effects == [expected]
    key = "welcome.thanks_granted" if isinstance(expected, GrantConsent) else "welcome.thanks_declined"
    assert [r.text for r in result.replies] == [CATALOG.text(lang, key)]
    assert result.state.ended


def test_unclear_answer_reprompts_with_the_buttons_again() -> None:
    result = take_turn(FLOW, started(), inbound("what is this about?"), "en", CATALOG)
    assert result.effects == []
    assert result.replies[0].text == CATALOG.text("en", "welcome.consent_reprompt")
    assert any(isinstance(p, Choices) for p in result.replies[0].parts)
    assert result.state.failures == 1 and result.state.step == "consent"


@pytest.mark.parametrize("text", ["🙂🙂", "asdfgh", "3", "0", "x" * 4000, "yes no"])
def test_two_failed_clarifications_hand_off_to_staff(text: str) -> None:
    once = take_turn(FLOW, started(), inbound(text), "en", CATALOG)
    twice = take_turn(FLOW, once.state, inbound(text), "en", CATALOG)
    assert twice.effects == [RequestHandoff(HandoffReason.CLARIFICATION_FAILED)]
    assert twice.replies[0].text == CATALOG.text("en", "common.passed_to_staff")
    assert twice.state.ended


def test_unknown_button_payload_is_not_taken_as_an_answer() -> None:
    result = take_turn(FLOW, started(), inbound(choice="maybe"), "en", CATALOG)
    assert result.effects == [] and result.state.failures == 1


def test_message_after_the_end_goes_to_staff_not_into_the_void() -> None:
    done = take_turn(FLOW, started(), inbound(choice="yes"), "en", CATALOG).state
    result = take_turn(FLOW, done, inbound("I have a question about my medicine"), "en", CATALOG)
    assert result.effects == [RequestHandoff(HandoffReason.MESSAGE_AFTER_END)]


def test_reopening_the_page_says_nothing_new() -> None:
    state = started()
    result = take_turn(FLOW, state, inbound(kind=InboundKind.CONVERSATION_STARTED), "en", CATALOG)
    assert result.replies == [] and result.effects == [] and result.state == state


def test_state_round_trips_through_json() -> None:
    state = started()
    assert ConversationState.from_json(state.to_json()) == state


def test_unknown_language_falls_back_to_english() -> None:
    result = take_turn(FLOW, None, inbound(kind=InboundKind.CONVERSATION_STARTED), "fr", CATALOG)
    assert result.replies[0].text == CATALOG.text("en", "welcome.greeting")


@pytest.mark.parametrize(
    ("lang", "text"),
    [("en", "I have crushing chest pain"), ("zh-CN", "我胸口很痛，喘不过气"), ("vi", "toi kho tho qua")],
)
def test_emergency_words_hand_off_at_once_whatever_the_step(lang: str, text: str) -> None:
    result = take_turn(FLOW, started(lang), inbound(text), lang, CATALOG)
    assert result.effects == [RequestHandoff(HandoffReason.EMERGENCY)]
    assert [r.text for r in result.replies] == [CATALOG.text(lang, "common.emergency")]
    assert result.state.ended


def test_asking_for_a_person_hands_off() -> None:
    result = take_turn(FLOW, started(), inbound("can I talk to a real person please"), "en", CATALOG)
    assert result.effects == [RequestHandoff(HandoffReason.ASKED_FOR_HUMAN)]


@pytest.mark.parametrize(("lang", "text"), [("en", "STOP"), ("zh-CN", "退订"), ("vi", "dừng")])
def test_stop_revokes_care_messages_on_the_channel(lang: str, text: str) -> None:
    result = take_turn(FLOW, started(lang), inbound(text), lang, CATALOG)
    assert result.effects == [RevokeConsent(ConsentPurpose.CARE)]
    assert [r.text for r in result.replies] == [CATALOG.text(lang, "common.stopped")]


def test_a_button_press_is_never_read_as_a_safety_word() -> None:
    result = take_turn(FLOW, started(), inbound("stop", choice="yes"), "en", CATALOG)
    assert result.effects == [GrantConsent(ConsentPurpose.CARE)]


def test_free_text_the_parsers_cannot_read_goes_to_the_understanding_function() -> None:
    asked: list[str] = []

    def understand(text: str) -> str | None:
        asked.append(text)
        return {
            "i agree, you can send me reminders": "consent_grant",
            "take me off the list": "consent_revoke",
        }.get(text)

    granted = take_turn(
        FLOW, started(), inbound("i agree, you can send me reminders"), "en", CATALOG, understand
    )
    assert granted.effects == [GrantConsent(ConsentPurpose.CARE)]
    revoked = take_turn(FLOW, started(), inbound("take me off the list"), "en", CATALOG, understand)
    assert revoked.effects == [RevokeConsent(ConsentPurpose.CARE)]
    unsure = take_turn(FLOW, started(), inbound("what is this about"), "en", CATALOG, understand)
    assert unsure.effects == [] and unsure.state.failures == 1  # re-asked, as without Rasa
    take_turn(FLOW, started(), inbound("2"), "en", CATALOG, understand)
    assert "2" not in asked  # structured answers never reach Rasa
