"""Items of every type and the helpers the answer-acceptance tests share."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import yaml

from questionnaires.answers import (
    Accepted,
    Messages,
    Rejected,
    accept,
)
from questionnaires.model import LANGS, AnswerValue, Blank, Item, ItemType, Option

MESSAGES_DIR = Path(__file__).resolve().parents[2] / "content" / "questionnaires" / "messages"
TODAY = date(2026, 3, 11)  # a Wednesday


def load_messages() -> dict[str, dict[str, str]]:
    return {
        lang: yaml.safe_load((MESSAGES_DIR / f"{lang}.yaml").read_text(encoding="utf-8")) for lang in LANGS
    }


MESSAGES: Messages = load_messages()


def tx(zh: str, vi: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "vi": vi, "en": en}


def item(kind: ItemType, **fields: object) -> Item:
    return Item(id=f"q_{kind.value}", type=kind, text=tx("问题", "Câu hỏi", "Question"), **fields)  # type: ignore[arg-type]


SATISFACTION = item(
    ItemType.SINGLE_CHOICE,
    required=True,
    options=(
        Option("very_satisfied", tx("非常满意", "Rất hài lòng", "Very satisfied"), 5),
        Option("satisfied", tx("满意", "Hài lòng", "Satisfied"), 4),
        Option(
            "neutral",
            tx("一般", "Bình thường", "Neither satisfied nor dissatisfied"),
            3,
            {"en": ("ok", "so so"), "zh-CN": ("还行",), "vi": ("tạm được",)},
        ),
        Option("dissatisfied", tx("不满意", "Không hài lòng", "Dissatisfied"), 2),
        Option("very_dissatisfied", tx("非常不满意", "Rất không hài lòng", "Very dissatisfied"), 1),
    ),
)
FEVER = item(
    ItemType.SINGLE_CHOICE,
    options=(
        Option("yes", tx("有", "Có", "Yes"), words={"zh-CN": ("发烧了",), "en": ("i have a fever",)}),
        Option("no", tx("没有", "Không", "No"), words={"vi": ("không sốt",), "en": ("no fever",)}),
    ),
)
WOUND = item(
    ItemType.MULTIPLE_CHOICE,
    options=(
        Option("none", tx("没有异常", "Không có gì bất thường", "No problems")),
        Option("redness", tx("发红", "Tấy đỏ", "Redness")),
        Option("swelling", tx("肿胀", "Sưng", "Swelling")),
        Option("bleeding", tx("出血", "Chảy máu", "Bleeding")),
        Option("discharge", tx("有渗液或流脓", "Rỉ dịch hoặc chảy mủ", "Fluid or pus leaking")),
    ),
)
READINGS = item(
    ItemType.DROPDOWN,
    options=(
        Option("once", tx("1次", "1 lần", "Once")),
        Option("two_to_three", tx("2–3次", "2–3 lần", "2–3 times")),
        Option("four_to_six", tx("4–6次", "4–6 lần", "4–6 times")),
    ),
)
STARS = item(ItemType.STAR_RATING, maximum=Decimal(5))
PAIN = item(ItemType.SCALE, minimum=Decimal(0), maximum=Decimal(10))
SYSTOLIC = item(ItemType.INTEGER, minimum=Decimal(60), maximum=Decimal(280))
COUNT = item(ItemType.INTEGER, minimum=Decimal(0))
ANY_INTEGER = item(ItemType.INTEGER)
TEMPERATURE = item(ItemType.DECIMAL, minimum=Decimal(35), maximum=Decimal(42))
GLUCOSE = item(ItemType.DECIMAL, minimum=Decimal(1), maximum=Decimal("33.3"))
APPOINTMENT = item(ItemType.DATE)
NAME = item(ItemType.SHORT_TEXT)
COMMENTS = item(ItemType.LONG_TEXT)
RESULTS = item(
    ItemType.MULTI_BLANK,
    blanks=(
        Blank("hba1c", tx("糖化血红蛋白（%）", "Chỉ số HbA1c (%)", "HbA1c (%)")),
        Blank("weight", tx("体重（公斤）", "Cân nặng (kg)", "Weight (kg)")),
    ),
)
ONE_BLANK = item(ItemType.MULTI_BLANK, blanks=(Blank("where", tx("地点", "Nơi", "Where")),))
EVERY_ANSWERABLE = [
    SATISFACTION,
    FEVER,
    WOUND,
    READINGS,
    STARS,
    PAIN,
    SYSTOLIC,
    TEMPERATURE,
    APPOINTMENT,
    NAME,
    COMMENTS,
    RESULTS,
]


def answer(
    it: Item, text: str, lang: str = "en", payload: str | list[str] | None = None
) -> Accepted | Rejected:
    return accept(it, text, lang, today=TODAY, messages=MESSAGES, payload=payload)


def accepted(it: Item, text: str, lang: str = "en", payload: str | list[str] | None = None) -> AnswerValue:
    result = answer(it, text, lang, payload)
    assert isinstance(result, Accepted), result
    return result.value


def rejected(it: Item, text: str, lang: str = "en", payload: str | list[str] | None = None) -> Rejected:
    result = answer(it, text, lang, payload)
    assert isinstance(result, Rejected), result
    return result
