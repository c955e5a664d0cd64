"""PHQ-9 and GAD-7 in the library: the standard items, totals and bands at the thresholds, and item 9
urgent whatever the total."""

from __future__ import annotations

import pytest

from questionnaires.logic import enabled_items, missing_required
from questionnaires.model import AnswerValue, Severity
from questionnaires.scoring import evaluate
from tests.questionnaires.library import (
    FREQUENCY,
    codes,
    q,
)

# --- PHQ-9 and GAD-7 -----------------------------------------------------------------------------


def frequency_answers(
    prefix: str, count: int, total: int, *, last: int | None = None
) -> dict[str, AnswerValue]:
    """Answers for items prefix_1..count adding up to total, filling the earlier items first; `last`
    fixes the last item's score (PHQ-9 item 9) and the rest is spread over the others."""
    points = [0] * count
    remaining = total - (last or 0)
    for n in range(count - (0 if last is None else 1)):
        points[n] = min(3, remaining)
        remaining -= points[n]
    if last is not None:
        points[-1] = last
    assert remaining == 0 and sum(points) == total
    return {f"{prefix}_{n + 1}": FREQUENCY[p] for n, p in enumerate(points)}


def test_phq9_has_the_nine_standard_items_and_answers() -> None:
    phq9 = q("phq9")
    assert [s.items for s in phq9.scores] == [tuple(f"phq9_{n}" for n in range(1, 10))]
    for n in range(1, 10):
        item = phq9.item(f"phq9_{n}")
        assert item.required
        assert [(o.code, o.score) for o in item.options] == list(zip(FREQUENCY, range(4), strict=True))
        assert [o.text["zh-CN"] for o in item.options] == ["完全不会", "好几天", "一半以上的天数", "几乎每天"]
        assert [o.text["en"] for o in item.options] == [
            "Not at all",
            "Several days",
            "More than half the days",
            "Nearly every day",
        ]
    assert phq9.item("phq9_9").text["en"] == (
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    assert phq9.item("phq9_9").text["zh-CN"] == "有不如死掉或用某种方式伤害自己的念头"


@pytest.mark.parametrize(
    ("total", "band", "severity"),
    [
        (0, "minimal", None),
        (4, "minimal", None),
        (5, "mild", None),
        (9, "mild", None),
        (10, "moderate", Severity.NORMAL),
        (14, "moderate", Severity.NORMAL),
        (15, "moderately_severe", Severity.HIGH),
        (19, "moderately_severe", Severity.HIGH),
        (20, "severe", Severity.URGENT),
        (24, "severe", Severity.URGENT),
    ],
)
def test_phq9_totals_and_bands_at_the_thresholds(total: int, band: str, severity: Severity | None) -> None:
    answers = frequency_answers("phq9", 9, total, last=0)
    ev = evaluate(q("phq9"), answers)
    assert ev.scores == {"phq9_total": total}
    assert ev.bands["phq9_total"].code == band
    expected = {} if severity is None else {f"phq9_total:{band}": severity}
    assert codes(ev) == expected
    assert ev.worst is severity


def test_phq9_maximum_is_severe_and_urgent_twice() -> None:
    ev = evaluate(q("phq9"), {f"phq9_{n}": "nearly_every_day" for n in range(1, 10)})
    assert ev.scores["phq9_total"] == 27
    assert codes(ev) == {"phq9_total:severe": Severity.URGENT, "self_harm_thoughts": Severity.URGENT}


@pytest.mark.parametrize("item9", ["several_days", "more_than_half", "nearly_every_day"])
def test_phq9_item_9_is_urgent_whatever_the_total(item9: str) -> None:
    answers = frequency_answers("phq9", 9, 0, last=0) | {"phq9_9": item9}
    ev = evaluate(q("phq9"), answers)
    assert ev.bands["phq9_total"].code == "minimal"
    assert codes(ev) == {"self_harm_thoughts": Severity.URGENT}
    assert ev.findings[0].items == ("phq9_9",)
    assert ev.worst is Severity.URGENT


def test_phq9_item_9_one_with_total_one() -> None:
    ev = evaluate(q("phq9"), frequency_answers("phq9", 9, 1, last=1))
    assert ev.scores["phq9_total"] == 1
    assert ev.worst is Severity.URGENT


def test_phq9_item_9_unanswered_raises_nothing() -> None:
    answers = frequency_answers("phq9", 9, 3, last=0)
    del answers["phq9_9"]
    assert evaluate(q("phq9"), answers).findings == ()
    assert missing_required(q("phq9"), answers) == ["phq9_9"]


def test_phq9_difficulty_question_only_follows_a_problem() -> None:
    phq9 = q("phq9")
    none = frequency_answers("phq9", 9, 0, last=0)
    assert "difficulty" not in [i.id for i in enabled_items(phq9, none)]
    one = none | {"phq9_5": "several_days"}
    assert "difficulty" in [i.id for i in enabled_items(phq9, one)]
    assert evaluate(phq9, one | {"difficulty": "very_difficult"}).scores["phq9_total"] == 1


@pytest.mark.parametrize(
    ("total", "band", "severity"),
    [
        (0, "minimal", None),
        (4, "minimal", None),
        (5, "mild", None),
        (9, "mild", None),
        (10, "moderate", Severity.NORMAL),
        (14, "moderate", Severity.NORMAL),
        (15, "severe", Severity.HIGH),
        (21, "severe", Severity.HIGH),
    ],
)
def test_gad7_bands(total: int, band: str, severity: Severity | None) -> None:
    ev = evaluate(q("gad7"), frequency_answers("gad7", 7, total))
    assert ev.scores == {"gad7_total": total}
    assert ev.bands["gad7_total"].code == band
    assert ev.worst is severity


def test_gad7_items() -> None:
    gad7 = q("gad7")
    assert [i.id for i in gad7.answerable()] == [f"gad7_{n}" for n in range(1, 8)]
    assert gad7.item("gad7_1").text["en"] == "Feeling nervous, anxious, or on edge"
    assert gad7.item("gad7_1").text["zh-CN"] == "感觉紧张、焦虑或急切"


def test_phq9_intent_to_act_after_item_9_is_an_emergency() -> None:
    phq9 = q("phq9")
    assert phq9.item("phq9_9_intent").enable_when  # asked only after a positive item 9
    answers = frequency_answers("phq9", 9, 1, last=1) | {"phq9_9_intent": "yes"}
    ev = evaluate(phq9, answers)
    assert codes(ev) == {"self_harm_thoughts": Severity.URGENT, "active_suicidal_intent": Severity.EMERGENCY}
    assert ev.worst is Severity.EMERGENCY
    assert ev.scores["phq9_total"] == 1  # the safety question is not scored
    assert codes(evaluate(phq9, answers | {"phq9_9_intent": "no"})) == {"self_harm_thoughts": Severity.URGENT}
