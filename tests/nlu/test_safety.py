"""The safety rules: emergencies, asking for a human and STOP in three languages, with no Rasa at all."""

from __future__ import annotations

import pytest

from nlu.safety import Emergency, SafetyKind, check, scan

E = Emergency

EMERGENCIES: list[tuple[str, Emergency]] = [
    # English
    ("I have chest pain", E.CHEST_PAIN),
    ("bad CHEST PAINS since this morning", E.CHEST_PAIN),
    ("there's a crushing chest feeling", E.CHEST_PAIN),
    ("my chest is tight", E.CHEST_PAIN),
    ("I think dad is having a heart attack", E.CHEST_PAIN),
    ("I can't breathe", E.BREATHING),
    ("i cant breathe properly", E.BREATHING),
    ("I can’t breathe", E.BREATHING),  # typographic apostrophe
    ("very short of breath after the surgery", E.BREATHING),
    ("my son is choking", E.BREATHING),
    ("she's not breathing", E.BREATHING),
    ("I think mum is having a stroke", E.STROKE),
    ("his face is drooping and slurred speech", E.STROKE),
    ("sudden numbness in my leg", E.STROKE),
    ("the wound won't stop bleeding", E.BLEEDING),
    ("heavy bleeding after delivery", E.BLEEDING),
    ("I'm coughing up blood", E.BLEEDING),
    ("my husband passed out", E.UNCONSCIOUS),
    ("grandpa is unresponsive", E.UNCONSCIOUS),
    ("she had a seizure", E.SEIZURE),
    ("my throat is swelling after the injection", E.ANAPHYLAXIS),
    ("I want to kill myself", E.SELF_HARM),
    ("I feel suicidal", E.SELF_HARM),
    ("thinking about self-harm again", E.SELF_HARM),
    ("i want to end my life", E.SELF_HARM),
    ("I took too many pills", E.SELF_HARM),
    ("ＣＨＥＳＴ ＰＡＩＮ", E.CHEST_PAIN),  # full width
    # Chinese
    ("我胸口痛", E.CHEST_PAIN),
    ("突然胸痛，出冷汗", E.CHEST_PAIN),
    ("胸闷得厉害", E.CHEST_PAIN),
    ("我爸心梗了", E.CHEST_PAIN),
    ("喘不过气来", E.BREATHING),
    ("孩子呼吸困难", E.BREATHING),
    ("我妈好像中风了，嘴歪", E.STROKE),
    ("半边身子麻，说话不清", E.STROKE),
    ("伤口出血不止", E.BLEEDING),
    ("产后大出血", E.BLEEDING),
    ("他吐血了", E.BLEEDING),
    ("老人晕倒了", E.UNCONSCIOUS),
    ("叫不醒", E.UNCONSCIOUS),
    ("孩子在抽搐", E.SEIZURE),
    ("过敏性休克", E.ANAPHYLAXIS),
    ("我不想活了", E.SELF_HARM),
    ("想自杀", E.SELF_HARM),
    ("我想死", E.SELF_HARM),
    ("吃了一瓶安眠药", E.SELF_HARM),
    # Vietnamese with diacritics
    ("tôi bị đau ngực", E.CHEST_PAIN),
    ("Đau thắt ngực quá", E.CHEST_PAIN),
    ("tức ngực khó chịu", E.CHEST_PAIN),
    ("tôi khó thở", E.BREATHING),
    ("con tôi không thở được", E.BREATHING),
    ("bà tôi bị đột quỵ", E.STROKE),
    ("méo miệng, yếu nửa người", E.STROKE),
    ("chảy máu nhiều không cầm được", E.BLEEDING),
    ("sau sinh bị băng huyết", E.BLEEDING),
    ("ông tôi bất tỉnh", E.UNCONSCIOUS),
    ("mẹ tôi bị ngất", E.UNCONSCIOUS),
    ("ngất rồi", E.UNCONSCIOUS),
    ("bé bị co giật", E.SEIZURE),
    ("sốc phản vệ sau khi tiêm", E.ANAPHYLAXIS),
    ("tôi muốn tự tử", E.SELF_HARM),
    ("tôi không muốn sống nữa", E.SELF_HARM),
    ("chán sống lắm rồi", E.SELF_HARM),
    # Vietnamese without diacritics, and half-typed
    ("toi bi dau nguc", E.CHEST_PAIN),
    ("kho tho qua", E.BREATHING),
    ("ko tho duoc", E.BREATHING),
    ("kho thở quá", E.BREATHING),
    ("ba toi bi dot quy", E.STROKE),
    ("chay mau nhieu lam", E.BLEEDING),
    ("bat tinh roi", E.UNCONSCIOUS),
    ("em bi co giat", E.SEIZURE),
    ("toi muon chet", E.SELF_HARM),
    ("toi muon tu tu", E.SELF_HARM),
    ("khong muon song nua", E.SELF_HARM),
    ("TOI KHO THO", E.BREATHING),
]


@pytest.mark.parametrize(("text", "emergency"), EMERGENCIES)
def test_emergency_words_in_three_languages(text: str, emergency: Emergency) -> None:
    hit = check(text)
    assert hit is not None, text
    assert (hit.kind, hit.emergency) == (SafetyKind.EMERGENCY, emergency)


NOT_EMERGENCIES = [
    # negated symptoms, as survey answers say them
    "no chest pain",
    "I don't have any chest pain",
    "not short of breath",
    "without chest pain today",
    "没有胸痛",
    "无胸闷",
    "không đau ngực",
    "tôi không khó thở",
    "khong kho tho",
    "ko bị đau ngực",
    "hết khó thở rồi",
    # look-alikes
    "từ từ thôi",  # slowly, not "tự tử"
    "di tu tu thoi",  # plain "từ từ" is ambiguous, so plain "tu tu" alone never matches
    "ngat",  # plain "ngất" is ambiguous ("ngắt")
    "chờ em một xíu",  # "xíu" (a little) is not "xỉu" (faint)
    "my heart is fine, I had a great stroll",
    "the pharmacy ended early",
    "I want to book cardiology",
    "胸外科在哪",
    "đau bụng nhẹ",
    "",
    "   ",
    "🙂",
]


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_negations_and_look_alikes_are_not_emergencies(text: str) -> None:
    assert all(hit.kind is not SafetyKind.EMERGENCY for hit in scan(text)), scan(text)


@pytest.mark.parametrize(
    "text",
    [
        "vẫn chưa hết khó thở",  # still short of breath: negated "gone", not a negated symptom
        "chua het kho tho",
        "no fever but chest pain",  # the negation belongs to another clause
        "没发烧，但是胸口痛",
        "không sốt, nhưng khó thở",
    ],
)
def test_negation_does_not_cross_clauses_or_double_negatives(text: str) -> None:
    hit = check(text)
    assert hit is not None and hit.kind is SafetyKind.EMERGENCY


@pytest.mark.parametrize(
    "text",
    ["I'm not going to kill myself", "不会自杀的", "tôi không tự tử đâu", "no, not suicidal"],
)
def test_self_harm_is_never_negated(text: str) -> None:
    hit = check(text)
    assert hit is not None and hit.emergency is Emergency.SELF_HARM


HUMAN = [
    "I want to talk to a real person",
    "human please",
    "HUMAN",
    "connect me to an agent",
    "can I speak to someone",
    "operator",
    "转人工",
    "人工客服在吗",
    "人工",
    "我要找真人",
    "联系客服",
    "cho tôi nói chuyện với người thật",
    "cho toi gap nhan vien",
    "gặp tư vấn viên",
    "nhân viên",
    "Nhan vien",
    "tổng đài viên ơi",
]


@pytest.mark.parametrize("text", HUMAN)
def test_asking_for_a_human(text: str) -> None:
    hit = check(text)
    assert hit is not None and hit.kind is SafetyKind.HUMAN, (text, hit)


@pytest.mark.parametrize(
    "text",
    [
        "人工关节置换术后复查",  # artificial joint, not "a human"
        "nhân viên rất nhiệt tình",  # praise that mentions staff is not a hand-off request
        "the staff were kind",
        "humanity",
    ],
)
def test_human_look_alikes(text: str) -> None:
    assert all(hit.kind is not SafetyKind.HUMAN for hit in scan(text)), scan(text)


STOP = [
    "STOP",
    "stop",
    "Stop!",
    "Ｓｔｏｐ",
    "stop all",
    "unsubscribe",
    "please unsubscribe me",
    "stop texting me",
    "don't text me again",
    "no more messages",
    "quit",
    "退订",
    "退订。",
    "TD",
    "td",
    "取消订阅",
    "别再发了",
    "不要再给我发短信",
    "停止",
    "dừng",
    "Dừng lại",
    "DUNG",
    "dung lai",
    "hủy đăng ký",
    "huỷ đăng ký",
    "huy dang ky",
    "đừng nhắn tin nữa",
    "dung nhan tin nua",
    "ngừng gửi tin nhắn",
    "từ chối",
]


@pytest.mark.parametrize("text", STOP)
def test_stop_in_three_languages(text: str) -> None:
    hit = check(text)
    assert hit is not None and hit.kind is SafetyKind.STOP, (text, hit)


NOT_STOP = [
    "please don't stop my medicine",  # "stop" counts only as the whole message
    "when does the bleeding stop",
    "the weekend",
    "end of the week",
    "cancel my appointment",  # cancelling an appointment is not opting out
    "Đúng",  # "correct": loses its marks to "dung" but carries others than "dừng"
    "đúng rồi",
    "停车场在哪",  # "停" alone is STOP only as the whole message
    "取消预约",
    "hủy lịch khám",
]


@pytest.mark.parametrize("text", NOT_STOP)
def test_stop_look_alikes(text: str) -> None:
    assert all(hit.kind is not SafetyKind.STOP for hit in scan(text)), scan(text)


def test_the_most_urgent_rule_wins_and_scan_reports_every_rule() -> None:
    text = "stop texting me, I want a human, I have chest pain"
    hits = scan(text)
    assert [h.kind for h in hits] == [SafetyKind.EMERGENCY, SafetyKind.HUMAN, SafetyKind.STOP]
    assert check(text) == hits[0]
    assert hits[0].emergency is Emergency.CHEST_PAIN
    assert hits[0].term == "chest pain" and hits[0].matched == "chest pain"


def test_self_harm_outranks_physical_emergencies() -> None:
    hit = check("chest pain and I want to die")
    assert hit is not None and hit.emergency is Emergency.SELF_HARM


def test_ordinary_messages_hit_nothing() -> None:
    for text in ["I want to book an appointment", "我想挂号", "tôi muốn đặt lịch khám", "1", "yes", "好的"]:
        assert scan(text) == (), text


def test_long_and_mixed_input_is_handled() -> None:
    text = ("blah " * 800) + "我胸口痛 and " + ("ok " * 500)
    hit = check(text)
    assert hit is not None and hit.emergency is Emergency.CHEST_PAIN
