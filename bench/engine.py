"""Answer evaluations per second on one core: `accept()` over typed replies to a 30-item questionnaire,
plus `evaluate()` (scores, bands, rules) once per completed response.

Run from the repository root (no arguments needed):

    PYTHONPATH=. python bench/engine.py [--seconds 10]

The questionnaire is built in code: satisfaction items, yes/no items with synonyms, multiple choice,
dropdowns, 0-10 scales, star ratings, blood pressure, temperature, one date item and text items, with
labels in three languages. Each simulated patient answers in one language (zh-CN, vi, en) with a
realistic mix of replies: option numbers (some full-width), option text in any language, synonyms,
misspellings, a label inside a sentence, number words and units ("五分", "năm", "7 điểm"), lists of
choices, and wrong answers (out of range, unknown option, two numbers). A refused reply is answered
again with a valid one, as a patient does after the re-prompt; both count as evaluations.

One "evaluation" is one `accept()` call. `evaluations_per_s` is all accept() calls divided by the
CPU time this single-threaded process used in the measured phase (`time.process_time`), which
includes one `evaluate()` per completed response: that is the rate of one core even when other work
shares the machine. `wall_evaluations_per_s` divides by wall time instead (equal on an idle core);
`accept_only_per_s` leaves the evaluate() time out. A warm-up response per language is not
measured (it builds the per-item option tables). The date answers here are all covered by our own
rules; how long a reply that falls through to dateparser takes is measured apart.

The output ends with one JSON line.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bench.harness import report
from nlu.dates import parse_date
from questionnaires.answers import Accepted, accept
from questionnaires.model import (
    LANGS,
    AnswerValue,
    Band,
    Condition,
    Item,
    ItemType,
    Kind,
    Operator,
    Option,
    Questionnaire,
    Rule,
    Score,
    Severity,
)
from questionnaires.scoring import evaluate

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 3, 11)


def tx(zh: str, vi: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "vi": vi, "en": en}


SATISFACTION = (
    Option("very_satisfied", tx("非常满意", "Rất hài lòng", "Very satisfied"), 5),
    Option("satisfied", tx("满意", "Hài lòng", "Satisfied"), 4),
    Option("neutral", tx("一般", "Bình thường", "Neither satisfied nor dissatisfied"), 3, {"en": ("ok", "so so")}),
    Option("dissatisfied", tx("不满意", "Không hài lòng", "Dissatisfied"), 2),
    Option("very_dissatisfied", tx("非常不满意", "Rất không hài lòng", "Very dissatisfied"), 1),
)
YES_NO = (
    Option("yes", tx("有", "Có", "Yes"), 1, {"zh-CN": ("有的", "是"), "vi": ("có ạ",), "en": ("i did",)}),
    Option("no", tx("没有", "Không", "No"), 0, {"zh-CN": ("没", "否"), "vi": ("không có",), "en": ("i did not",)}),
)
SYMPTOMS = (
    Option("none", tx("没有异常", "Không có gì bất thường", "No problems")),
    Option("redness", tx("发红", "Tấy đỏ", "Redness")),
    Option("swelling", tx("肿胀", "Sưng", "Swelling")),
    Option("bleeding", tx("出血", "Chảy máu", "Bleeding")),
    Option("discharge", tx("有渗液或流脓", "Rỉ dịch hoặc chảy mủ", "Fluid or pus leaking")),
)
FREQUENCY = (
    Option("once", tx("1次", "1 lần", "Once")),
    Option("two_to_three", tx("2–3次", "2–3 lần", "2–3 times")),
    Option("four_to_six", tx("4–6次", "4–6 lần", "4–6 times")),
    Option("daily", tx("每天1次", "Mỗi ngày 1 lần", "Once a day")),
)

# Replies by item kind, per language; "!" marks a reply that should be refused.
CHOICE_REPLIES = {
    "zh-CN": ["1", "2", "３", "满意", "非常满意", "一般", "我很满意", "不满意", "2。", "6!", "还可以吧!"],
    "vi": ["1", "2", "3", "Hài lòng", "rất hài lòng", "hai long", "Bình thường", "tôi rất hài lòng", "7!"],
    "en": ["1", "2", "4", "satisfied", "Very satisfied", "satisfed", "very satisfed", "so so", "ok", "0!"],
}
YES_NO_REPLIES = {
    "zh-CN": ["1", "2", "有", "没有", "是的", "没", "不是", "好的", "3!"],
    "vi": ["1", "2", "có", "không", "vâng", "ko", "không có", "dạ", "có ạ"],
    "en": ["1", "2", "yes", "no", "Yes", "nope", "i did", "yeah", "maybe!"],
}
MULTI_REPLIES = {
    "zh-CN": ["1", "2,3", "2、3", "2和4", "发红、肿胀", "出血", "没有异常", "9!"],
    "vi": ["1", "2, 3", "2 và 3", "Tấy đỏ và sưng", "Chảy máu", "sung", "8!"],
    "en": ["1", "2,3", "2 3", "redness, swelling", "Bleeding", "no problems", "swelin", "redness, banana!"],
}
DROPDOWN_REPLIES = {
    "zh-CN": ["1", "2", "1次", "2-3次", "每天1次", "5!"],
    "vi": ["1", "3", "1 lần", "2–3 lần", "mỗi ngày 1 lần"],
    "en": ["1", "4", "once", "2-3 times", "Once a day", "twice!"],
}
SCALE_REPLIES = {
    "zh-CN": ["5", "7", "0", "五分", "8分", "十", "３", "大概六分", "11!", "5到6!"],
    "vi": ["5", "7", "năm", "7 điểm", "mười", "khoảng 6", "hai", "12!", "5 hoặc 6!"],
    "en": ["5", "7", "five", "8 points", "about 6", "7/10", "ten", "11!", "5 or 6!"],
}
STAR_REPLIES = {
    "zh-CN": ["5", "4", "四星", "5颗星", "０!"],
    "vi": ["5", "4", "năm sao", "4 sao", "6!"],
    "en": ["5", "4", "four", "⭐⭐⭐⭐", "3 stars", "7!"],
}
BP_REPLIES = {
    "zh-CN": ["130", "一百二十", "135", "145", "20!"],
    "vi": ["130", "125", "một trăm", "140", "400!"],
    "en": ["130", "120", "about 135", "one hundred", "1400!"],
}
TEMPERATURE_REPLIES = {
    "zh-CN": ["37.5", "38度5", "38度", "三十七点五", "37", "45!"],
    "vi": ["37,5", "38 độ", "37.8", "ba mươi tám", "50!"],
    "en": ["37.5", "38.2°C", "about 38", "thirty eight", "98.6!"],
}
DATE_REPLIES = {
    "zh-CN": ["下周三", "明天", "3月20日", "后天", "2026-04-02", "以后再说!"],
    "vi": ["thứ ba tuần sau", "ngày mai", "20/3", "thứ sáu tuần này", "sớm thôi!"],
    "en": ["next Tuesday", "tomorrow", "20 March", "in 3 days", "soon!"],
}
TEXT_REPLIES = {
    "zh-CN": ["很好，谢谢医生", "护士很耐心", "停车不方便", "无"],
    "vi": ["Cảm ơn bác sĩ", "Y tá rất tận tình", "Chờ hơi lâu", "Không có"],
    "en": ["Thank you, all good", "The nurses were very kind", "Parking was hard", "nothing"],
}
VALID_RETRY = {
    ItemType.SINGLE_CHOICE: "1", ItemType.DROPDOWN: "1", ItemType.MULTIPLE_CHOICE: "1",
    ItemType.SCALE: "5", ItemType.STAR_RATING: "4", ItemType.INTEGER: "130", ItemType.DECIMAL: "37.5",
    ItemType.DATE: "2026-04-02", ItemType.SHORT_TEXT: "ok", ItemType.LONG_TEXT: "ok",
}  # fmt: skip


def build() -> tuple[Questionnaire, dict[str, dict[str, list[str]]]]:
    items: list[Item] = []
    replies: dict[str, dict[str, list[str]]] = {}

    def add(item: Item, pool: dict[str, list[str]]) -> None:
        items.append(item)
        replies[item.id] = pool

    def q(i: int) -> dict[str, str]:
        return tx(f"问题{i}", f"Câu hỏi {i}", f"Question {i}")

    for i in range(8):
        add(Item(f"sat{i}", ItemType.SINGLE_CHOICE, q(i), required=True, options=SATISFACTION), CHOICE_REPLIES)
    for i in range(4):
        add(Item(f"yn{i}", ItemType.SINGLE_CHOICE, q(10 + i), required=True, options=YES_NO), YES_NO_REPLIES)
    for i in range(3):
        add(Item(f"multi{i}", ItemType.MULTIPLE_CHOICE, q(20 + i), options=SYMPTOMS), MULTI_REPLIES)
    for i in range(2):
        add(Item(f"freq{i}", ItemType.DROPDOWN, q(30 + i), options=FREQUENCY), DROPDOWN_REPLIES)
    for i in range(3):
        add(Item(f"scale{i}", ItemType.SCALE, q(40 + i), required=True, minimum=Decimal(0), maximum=Decimal(10)),
            SCALE_REPLIES)  # fmt: skip
    for i in range(2):
        add(Item(f"stars{i}", ItemType.STAR_RATING, q(50 + i), maximum=Decimal(5)), STAR_REPLIES)
    for i in range(3):
        add(Item(f"bp{i}", ItemType.INTEGER, q(60 + i), minimum=Decimal(60), maximum=Decimal(280)), BP_REPLIES)
    add(Item("temp", ItemType.DECIMAL, q(70), minimum=Decimal(35), maximum=Decimal(42)), TEMPERATURE_REPLIES)
    add(Item("visit", ItemType.DATE, q(71)), DATE_REPLIES)
    add(Item("praise", ItemType.SHORT_TEXT, q(72)), TEXT_REPLIES)
    add(Item("problem", ItemType.SHORT_TEXT, q(73)), TEXT_REPLIES)
    add(Item("other", ItemType.LONG_TEXT, q(74)), TEXT_REPLIES)
    assert len(items) == 30
    satisfaction = Score(
        "satisfaction", tuple(f"sat{i}" for i in range(8)), tx("满意度", "Hài lòng", "Satisfaction"),
        (Band("low", 8, 23, tx("低", "Thấp", "Low"), Severity.HIGH), Band("ok", 24, 40, tx("好", "Tốt", "Good"))),
    )  # fmt: skip
    rules = (
        Rule("pain", (Condition(Operator.GE, 7, item="scale0"),), Severity.URGENT, tx("疼痛", "Đau", "Pain")),
        Rule("fever", (Condition(Operator.EQ, "yes", item="yn0"), Condition(Operator.GE, Decimal("38.5"), item="temp")),
             Severity.HIGH, tx("发热", "Sốt", "Fever")),
        Rule("bp", (Condition(Operator.GE, 180, item="bp0"),), Severity.URGENT, tx("血压", "Huyết áp", "BP")),
        Rule("wound", (Condition(Operator.CONTAINS, "discharge", item="multi0"),), Severity.HIGH,
             tx("伤口", "Vết mổ", "Wound")),
    )  # fmt: skip
    title = tx("基准问卷", "Bảng hỏi thử", "Benchmark questionnaire")
    return Questionnaire("bench", 1, Kind.FOLLOW_UP, title, tuple(items), (satisfaction,), rules), replies


def load_messages() -> dict[str, dict[str, str]]:
    folder = ROOT / "content" / "questionnaires" / "messages"
    return {lang: yaml.safe_load((folder / f"{lang}.yaml").read_text(encoding="utf-8")) for lang in LANGS}


def respond(
    q: Questionnaire, replies: dict[str, dict[str, list[str]]], lang: str, rng: random.Random, messages: Any
) -> tuple[int, int, dict[str, AnswerValue]]:
    """One patient's response: (accept() calls, refusals, accepted answers)."""
    calls = refused = 0
    answers: dict[str, AnswerValue] = {}
    for item in q.items:
        text = rng.choice(replies[item.id][lang]).rstrip("!")
        while True:
            calls += 1
            result = accept(item, text, lang, today=TODAY, messages=messages)
            if isinstance(result, Accepted):
                answers[item.id] = result.value
                break
            refused += 1
            text = VALID_RETRY[item.type]
    return calls, refused, answers


def check_replies(q: Questionnaire, replies: dict[str, dict[str, list[str]]], messages: Any) -> int:
    """The mix is what it says: replies marked "!" are refused, the others accepted. Returns the count."""
    wrong = []
    for item in q.items:
        for lang, pool in replies[item.id].items():
            for reply in pool:
                result = accept(item, reply.rstrip("!"), lang, today=TODAY, messages=messages)
                if isinstance(result, Accepted) == reply.endswith("!"):
                    wrong.append(f"{item.id} [{lang}] {reply!r}: {result}")
    if wrong:
        sys.exit("replies not handled as marked:\n" + "\n".join(wrong))
    return sum(len(pool) for item in q.items for pool in replies[item.id].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measured phase")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    q, replies = build()
    messages = load_messages()
    distinct = check_replies(q, replies, messages)  # also the warm-up: builds every option table
    rng = random.Random(args.seed)

    calls = refused = responses = 0
    evaluate_s = 0.0
    findings = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + args.seconds
    while time.perf_counter() < deadline:
        for lang in LANGS:
            n, r, answers = respond(q, replies, lang, rng, messages)
            before = time.process_time()
            findings += len(evaluate(q, answers).findings)
            evaluate_s += time.process_time() - before
            calls, refused, responses = calls + n, refused + r, responses + 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    # A reply none of our rules knows goes to dateparser (imported and warmed up here).
    parse_date("Thursday, 3 December 2026", "en", TODAY)
    fallback_start = time.perf_counter()
    for _ in range(20):
        parse_date("Thursday, 3 December 2026", "en", TODAY)
    fallback_ms = (time.perf_counter() - fallback_start) / 20 * 1000

    result = {
        "evaluations_per_s": round(calls / cpu),
        "wall_evaluations_per_s": round(calls / elapsed),
        "accept_only_per_s": round(calls / (cpu - evaluate_s)),
        "responses_per_s": round(responses / cpu, 1),
        "evaluate_us_per_response": round(evaluate_s / responses * 1e6, 1),
        "refused_share": round(refused / calls, 3),
        "findings_per_response": round(findings / responses, 2),
        "dateparser_fallback_ms": round(fallback_ms, 2),
        "items": len(q.items),
        "distinct_replies": distinct,
        "evaluations": calls,
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    print(f"{calls} evaluations in {cpu:.1f} CPU s ({elapsed:.1f} s wall) over {responses} responses ({len(q.items)} items each)")
    report(result)


if __name__ == "__main__":
    main()
