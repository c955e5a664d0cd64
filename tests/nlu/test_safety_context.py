"""The red-flag matcher in context: paraphrase and word gaps, negation, resolved and past symptoms,
relatives, jokes and quotations, Vietnamese collisions, and the category each hit is given."""

from __future__ import annotations

import pytest

from nlu.red_flags import Emergency
from nlu.safety import SafetyKind, check, scan

E = Emergency


def emergency_of(text: str) -> Emergency | None:
    hit = check(text)
    return hit.emergency if hit is not None and hit.kind is SafetyKind.EMERGENCY else None


def no_emergency(text: str) -> bool:
    return all(hit.kind is not SafetyKind.EMERGENCY for hit in scan(text))


@pytest.mark.parametrize(
    ("text", "emergency"),
    [
        # verb ... amount ... medicine, with words in between, in any order
        ("I took like 20 of my sleeping pills", E.SELF_HARM),
        ("swallowed pretty much the whole box of my tablets", E.SELF_HARM),
        ("吃了一整瓶安眠药", E.SELF_HARM),
        ("把一盒止痛药全吃了", E.SELF_HARM),
        ("uống hết cả vỉ thuốc ngủ", E.SELF_HARM),
        ("em vừa uống 40 viên thuốc an thần", E.SELF_HARM),
        # ...but a child or an accident makes it poisoning, not self-harm
        ("my toddler got into grandma's pills and ate a bunch of them", E.POISONING),
        ("bố uống nhầm thuốc trừ sâu", E.POISONING),
        ("孩子喝了几口消毒液", E.POISONING),
        # chest pain described rather than named
        ("feels like a heavy weight pressing on my chest", E.CHEST_PAIN),
        ("胸口像压了块石头一样闷", E.CHEST_PAIN),
        ("ngực bị đè nặng, khó chịu lắm", E.CHEST_PAIN),
        # stroke in lay words
        ("his smile looks crooked all of a sudden", E.STROKE),
        ("奶奶嘴角突然歪了", E.STROKE),
        ("mẹ tự nhiên nói ngọng, tay trái yếu", E.STROKE),
        # breathing by how it feels
        ("i cant get enough air in even sitting still", E.BREATHING),
        ("呼吸很费劲，说不了几个字", E.BREATHING),
        # the relative's current emergency counts
        ("my mother collapsed and won't wake up", E.UNCONSCIOUS),
        ("我爸刚才突然晕倒了", E.UNCONSCIOUS),
        ("ông em vừa ngất xỉu", E.UNCONSCIOUS),
        # passive and indirect suicidal thoughts
        ("honestly everyone would be better off without me", E.SELF_HARM),
        ("有时候真想睡着了就不要再醒过来", E.SELF_HARM),
        ("em thấy sống để làm gì nữa", E.SELF_HARM),
        # infants, pregnancy, wounds, headaches
        ("my 5 week old is burning up, 38.4", E.INFANT_FEVER),
        ("宝宝才三周，发烧了", E.INFANT_FEVER),
        ("33 weeks and baby has stopped kicking since last night", E.PREGNANCY),
        ("mang thai 24 tuần mà ra máu", E.PREGNANCY),
        ("the incision is leaking pus and i keep shivering", E.WOUND_INFECTION),
        ("sudden headache, worst ever, like a thunderclap", E.SEVERE_HEADACHE),
    ],
)
def test_paraphrases_and_word_gaps(text: str, emergency: Emergency) -> None:
    assert emergency_of(text) is emergency, scan(text)


@pytest.mark.parametrize(
    "text",
    [
        # negated in the same clause
        "no chest pain at all today",
        "I haven't had any trouble breathing",
        "no bleeding and no pus from the wound",
        "không đau ngực, không khó thở",
        "ko dau nguc",
        "没有胸闷也没有气短",
        "伤口不红不肿，没有流脓",
        # resolved or long past
        "the pain went away",
        "the pain is better now",
        "had chest pain last year but it's fine",
        "bị khó thở hôm qua, giờ đỡ rồi",
        "上周胸闷，现在好了",
        "我三年前中风过",
        "i fainted once as a teenager",
        "năm 2018 bị tai biến, giờ ổn",
        # a general question, or about a relative's old illness
        "what are the signs of a stroke?",
        "my grandfather died of a heart attack, should I be screened?",
        "dấu hiệu nhồi máu cơ tim là gì vậy",
        "心梗有哪些症状？",
        # jokes, figures of speech, quotations
        "this queue is killing me lol",
        "I'm dying to see the results haha",
        'the radio is playing "I can\'t breathe without you"',
        "cơm ngon xỉu",
        "笑死我了哈哈",
        # look-alikes after folding
        "từ từ thôi",
        "chờ một xíu",
        "vết mổ hơi đỏ, không sốt",
        "book me into the chest clinic please",
        "胸外科在几楼",
        "took my tablets this morning as prescribed",
    ],
)
def test_negated_resolved_general_and_joking_messages_do_not_alarm(text: str) -> None:
    assert no_emergency(text), scan(text)


@pytest.mark.parametrize(
    "text",
    [
        "I don't want to live",
        "I don't want to be here anymore",
        "not going to lie, I've been cutting myself again",
        "没有什么意思，不想活了",
        "không muốn sống nữa",
        "I'm not suicidal lol",  # self-harm words are never negated or laughed away
    ],
)
def test_self_harm_is_never_negated_or_discounted(text: str) -> None:
    assert emergency_of(text) is E.SELF_HARM, scan(text)


@pytest.mark.parametrize(
    "text",
    [
        "the pain went away but now it's back and crushing my chest",  # came back
        "no fever, but she had a fit and is not waking up",  # negation stays in its clause
        "昨天好了，今天又胸口疼得厉害",
        "hết sốt rồi nhưng giờ lại khó thở",
    ],
)
def test_a_resolved_symptom_does_not_hide_a_new_one(text: str) -> None:
    assert emergency_of(text) is not None, scan(text)


def test_never_had_one_like_this_is_emphasis_not_denial() -> None:
    assert emergency_of("never had a headache like this, it hit me all at once") is E.SEVERE_HEADACHE
    assert emergency_of("从来没这么头痛过，突然就来了") is E.SEVERE_HEADACHE


def test_vietnamese_collisions_are_decided_by_the_marks_typed() -> None:
    assert emergency_of("tôi muốn tự tử") is E.SELF_HARM
    assert no_emergency("từ từ rồi tính")
    assert emergency_of("bà bị ngất") is E.UNCONSCIOUS
    assert no_emergency("điện bị ngắt")  # power cut off
    assert emergency_of("họng sưng sau khi uống thuốc") is E.ANAPHYLAXIS
    assert no_emergency("gạc hơi hồng, không sao")  # pink gauze, fine
    assert emergency_of("sau mo dau qua la het") is E.POST_OP_PAIN  # "la hét" (screaming), not "là hết"


def test_a_long_message_with_one_red_flag_at_the_end() -> None:
    filler = "The nurse was very kind and the food was fine. " * 80
    assert emergency_of(filler + "But tonight I suddenly can't breathe") is E.BREATHING
    assert emergency_of(filler + "lol. My dad collapsed and won't wake up") is E.UNCONSCIOUS


def test_the_hit_names_its_terms_and_span() -> None:
    hit = check("I took like 20 of my sleeping pills")
    assert hit is not None
    assert hit.term == "took … 20 … sleeping pills"
    assert hit.matched == "took like 20 of my sleeping pills"
