"""Branching and progress: `holds` for every operator and kind of value, enabling through nested groups
and any/all behaviour, cascading `prune`, `next_item`, `missing_required` and `progress`."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from questionnaires.loader import parse_questionnaire
from questionnaires.logic import (
    enabled_items,
    holds,
    is_enabled,
    missing_required,
    next_item,
    progress,
    prune,
)
from questionnaires.model import AnswerValue, Condition, Operator, Questionnaire

EQ, NE, GT, GE, LT, LE = Operator.EQ, Operator.NE, Operator.GT, Operator.GE, Operator.LT, Operator.LE
EXISTS, CONTAINS = Operator.EXISTS, Operator.CONTAINS


def texts(en: str) -> dict[str, str]:
    return {"zh-CN": f"{en}（中文）", "vi": f"{en} (tiếng Việt)", "en": en}


def on(item: str, op: str, value: Any) -> dict[str, Any]:
    return {"item": item, "op": op, "value": value}


YES_NO = [{"code": "yes", "text": texts("Yes")}, {"code": "no", "text": texts("No")}]


# --- holds ---------------------------------------------------------------------------------------


def check(op: Operator, value: Any, answer: object, *, answered: bool = True) -> bool:
    answers: dict[str, Any] = {"x": answer} if answered else {}
    return holds(Condition(op, value, item="x"), answers)


@pytest.mark.parametrize(
    ("op", "value", "answer", "expected"),
    [
        # option codes
        (EQ, "yes", "yes", True),
        (EQ, "yes", "no", False),
        (NE, "yes", "no", True),
        (NE, "yes", "yes", False),
        (GT, "yes", "yes", False),
        (LE, "yes", "yes", False),
        (CONTAINS, "yes", "yes", False),  # contains is for lists only
        # numeric-looking codes and a number from YAML compare as numbers
        (EQ, 1, "1", True),
        (EQ, "01", "1", True),
        (GT, 0, "2", True),
        # lists (multiple choice): = and != test membership
        (EQ, "a", ["a", "b"], True),
        (EQ, "c", ["a", "b"], False),
        (NE, "c", ["a", "b"], True),
        (NE, "a", ["a", "b"], False),
        (CONTAINS, "a", ["a", "b"], True),
        (CONTAINS, "c", ["a", "b"], False),
        (CONTAINS, 1, ["1"], True),
        (EQ, "a", [], False),
        (NE, "a", [], True),
        (CONTAINS, "a", [], False),
        (GT, 0, ["1"], False),
        (GE, "a", ["a"], False),
        (LT, 5, ["1"], False),
        (LE, 5, ["1"], False),
        # integers
        (EQ, 7, 7, True),
        (EQ, 7, 6, False),
        (NE, 7, 6, True),
        (NE, 7, 7, False),
        (GT, 7, 8, True),
        (GT, 7, 7, False),
        (GE, 7, 7, True),
        (GE, 7, 6, False),
        (LT, 7, 6, True),
        (LT, 7, 7, False),
        (LE, 7, 7, True),
        (LE, 7, 8, False),
        (CONTAINS, 7, 7, False),
        (EQ, 0, 0, True),
        (LT, 0, -1, True),
        # decimals, against ints and decimals
        (GE, 39, Decimal("39.0"), True),
        (GE, 39, Decimal("38.9"), False),
        (GT, 39, Decimal("39.01"), True),
        (EQ, 39, Decimal("39.00"), True),
        (NE, 39, Decimal("39.00"), False),
        (LT, Decimal("3.9"), Decimal("3.89"), True),
        (LT, Decimal("3.9"), Decimal("3.9"), False),
        (LE, Decimal("3.9"), Decimal("3.9"), True),
        (GE, Decimal("38.5"), 39, True),
        (EQ, Decimal("38.5"), 38, False),
        # text that is not a number only takes = and !=
        (EQ, "好", "好", True),
        (NE, "好", "不好", True),
        (GT, 1, "many", False),
        (LT, 1, "many", False),
        # text spelling a non-finite number never compares (and never raises)
        (GT, 1, "nan", False),
        (LT, 1, "NaN", False),
        (EQ, 1, "snan", False),
        (NE, 1, "snan", True),
        (GT, 1, "inf", False),
        (GE, 1, "Infinity", False),
        (GE, 1, Decimal("NaN"), False),
        # dates compare equal by value
        (EQ, "2026-11-20", date(2026, 11, 20), True),
        (EQ, date(2026, 11, 20), date(2026, 11, 20), True),
        (NE, date(2026, 11, 20), date(2026, 11, 21), True),
        # a blank-by-blank answer is never equal to a plain value
        (EQ, "a", {"a": "1"}, False),
        # exists: answered, whatever the answer, even an empty one
        (EXISTS, True, "no", True),
        (EXISTS, True, 0, True),
        (EXISTS, True, [], True),
        (EXISTS, True, "", True),
        (EXISTS, False, "no", False),
        (EXISTS, False, 0, False),
    ],
)
def test_holds(op: Operator, value: Any, answer: object, expected: bool) -> None:
    assert check(op, value, answer) is expected


@pytest.mark.parametrize("op", [EQ, NE, GT, GE, LT, LE, CONTAINS])
@pytest.mark.parametrize("value", ["yes", 7, Decimal("3.9"), "a"])
def test_an_unanswered_item_never_compares(op: Operator, value: Any) -> None:
    assert check(op, value, None, answered=False) is False


def test_exists_on_an_unanswered_item() -> None:
    assert check(EXISTS, False, None, answered=False) is True
    assert check(EXISTS, True, None, answered=False) is False


def test_holds_on_scores() -> None:
    at_least_10 = Condition(GE, 10, score="total")
    assert holds(at_least_10, {}, {"total": 10}) is True
    assert holds(at_least_10, {}, {"total": 9}) is False
    assert holds(at_least_10, {}, {}) is False
    assert holds(at_least_10, {}, None) is False
    assert holds(at_least_10, {"total": 12}, None) is False  # an answer is not a score
    assert holds(Condition(EXISTS, False, score="total"), {}, {}) is True
    assert holds(Condition(EXISTS, True, score="total"), {}, {"total": 0}) is True
    assert holds(Condition(EQ, 0, score="total"), {}, {"total": 0}) is True


def test_holds_compares_the_named_item_only() -> None:
    cond = Condition(EQ, "yes", item="fever")
    assert holds(cond, {"fever": "yes", "cough": "no"}) is True
    assert holds(cond, {"cough": "yes"}) is False


# --- a questionnaire with nested groups ----------------------------------------------------------
#
#   a            single choice, required
#   outer        group, enabled when a = yes
#     b          single choice
#     inner      group, enabled when b = yes
#       c        integer, required
#       note     display
#   e            integer, enabled when a = yes AND c >= 5
#   f            integer, enabled when a = no OR c >= 5
#   g            short text


def nested() -> Questionnaire:
    return parse_questionnaire(
        {
            "id": "nested",
            "version": 1,
            "title": texts("Nested"),
            "items": [
                {"id": "a", "type": "single_choice", "required": True, "text": texts("A"), "options": YES_NO},
                {
                    "id": "outer",
                    "type": "group",
                    "text": texts("Outer"),
                    "enable_when": [on("a", "=", "yes")],
                    "items": [
                        {"id": "b", "type": "single_choice", "text": texts("B"), "options": YES_NO},
                        {
                            "id": "inner",
                            "type": "group",
                            "text": texts("Inner"),
                            "enable_when": [on("b", "=", "yes")],
                            "items": [
                                {"id": "c", "type": "integer", "required": True, "text": texts("C")},
                                {"id": "note", "type": "display", "text": texts("Note")},
                            ],
                        },
                    ],
                },
                {
                    "id": "e",
                    "type": "integer",
                    "text": texts("E"),
                    "enable_when": [on("a", "=", "yes"), on("c", ">=", 5)],
                },
                {
                    "id": "f",
                    "type": "integer",
                    "text": texts("F"),
                    "enable_behavior": "any",
                    "enable_when": [on("a", "=", "no"), on("c", ">=", 5)],
                },
                {"id": "g", "type": "short_text", "text": texts("G")},
            ],
        }
    )


def enabled(answers: dict[str, AnswerValue]) -> set[str]:
    q = nested()
    return {item.id for item in q.walk() if is_enabled(q, item, answers)}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({}, {"a", "g"}),
        ({"a": "no"}, {"a", "f", "g"}),
        ({"a": "yes"}, {"a", "outer", "b", "g"}),
        ({"a": "yes", "b": "no"}, {"a", "outer", "b", "g"}),
        ({"a": "yes", "b": "yes"}, {"a", "outer", "b", "inner", "c", "note", "g"}),
        ({"a": "yes", "b": "yes", "c": 4}, {"a", "outer", "b", "inner", "c", "note", "g"}),
        ({"a": "yes", "b": "yes", "c": 5}, {"a", "outer", "b", "inner", "c", "note", "e", "f", "g"}),
        # a stale answer inside a disabled group enables nothing
        ({"a": "no", "b": "yes", "c": 7}, {"a", "f", "g"}),
        ({"a": "yes", "b": "no", "c": 7}, {"a", "outer", "b", "g"}),
    ],
)
def test_is_enabled_through_nested_groups_and_any_all(
    answers: dict[str, AnswerValue], expected: set[str]
) -> None:
    assert enabled(answers) == expected


def test_enabled_items_are_answerable_and_in_order() -> None:
    q = nested()
    ids = [item.id for item in enabled_items(q, {"a": "yes", "b": "yes", "c": 9})]
    assert ids == ["a", "b", "c", "e", "f", "g"]


def test_prune_cascades_through_groups_and_conditions() -> None:
    q = nested()
    stale: dict[str, AnswerValue] = {"a": "no", "b": "yes", "c": 7, "e": 1, "f": 2, "g": "hi", "zzz": "?"}
    assert prune(q, stale) == {"a": "no", "f": 2, "g": "hi"}
    # f stays only while something still enables it
    assert prune(q, {"a": "yes", "b": "no", "c": 7, "e": 1, "f": 2}) == {"a": "yes", "b": "no"}
    assert prune(q, {"a": "yes", "b": "yes", "c": 7, "e": 1, "f": 2}) == {
        "a": "yes",
        "b": "yes",
        "c": 7,
        "e": 1,
        "f": 2,
    }


def chain() -> Questionnaire:
    """x -> y -> z -> w: each asked only when the one before says yes (w: when z exists)."""
    return parse_questionnaire(
        {
            "id": "chain",
            "version": 1,
            "title": texts("Chain"),
            "items": [
                {"id": "x", "type": "single_choice", "text": texts("X"), "options": YES_NO},
                {
                    "id": "y",
                    "type": "single_choice",
                    "text": texts("Y"),
                    "options": YES_NO,
                    "enable_when": [on("x", "=", "yes")],
                },
                {
                    "id": "z",
                    "type": "single_choice",
                    "text": texts("Z"),
                    "options": YES_NO,
                    "required": True,
                    "enable_when": [on("y", "=", "yes")],
                },
                {
                    "id": "w",
                    "type": "long_text",
                    "text": texts("W"),
                    "required": True,
                    "enable_when": [on("z", "exists", True)],
                },
            ],
        }
    )


def test_one_changed_answer_disables_the_whole_chain() -> None:
    q = chain()
    stale: dict[str, AnswerValue] = {"x": "no", "y": "yes", "z": "yes", "w": "text"}
    assert prune(q, stale) == {"x": "no"}
    assert [item.id for item in enabled_items(q, stale)] == ["x"]
    assert missing_required(q, stale) == []
    assert next_item(q, stale) is None
    assert progress(q, stale) == (1, 1)


def test_enabled_items_never_depend_on_stale_answers() -> None:
    cases: list[tuple[Questionnaire, dict[str, list[AnswerValue | None]]]] = [
        (nested(), {"a": ["yes", "no", None], "b": ["yes", "no", None], "c": [4, 5, None], "e": [1, None]}),
        (chain(), {"x": ["yes", "no", None], "y": ["yes", "no", None], "z": ["yes", None], "w": ["t", None]}),
    ]
    for q, values in cases:
        for combo in itertools.product(*values.values()):
            answers = {k: v for k, v in zip(values, combo, strict=True) if v is not None}
            kept = prune(q, answers)
            assert enabled_items(q, answers) == enabled_items(q, kept), answers
            assert prune(q, kept) == kept, answers
            assert set(kept) <= set(answers)


# --- what to ask next, what is missing, how far along ----------------------------------------------


def test_next_item_walks_the_enabled_questions() -> None:
    q = nested()

    def nxt(answers: dict[str, AnswerValue], skipped: frozenset[str] = frozenset()) -> str | None:
        found = next_item(q, answers, skipped)
        return found.id if found else None

    assert nxt({}) == "a"
    assert nxt({"a": "yes"}) == "b"
    assert nxt({"a": "yes", "b": "yes"}) == "c"
    assert nxt({"a": "yes", "b": "yes", "c": 6}) == "e"
    assert nxt({"a": "yes", "b": "yes", "c": 6, "e": 1}) == "f"
    assert nxt({"a": "no"}) == "f"
    assert nxt({"a": "no", "f": 3}) == "g"
    assert nxt({"a": "no", "f": 3, "g": "ok"}) is None


def test_next_item_passes_over_skipped_questions() -> None:
    q = nested()
    skipped_b = next_item(q, {"a": "yes"}, frozenset({"b"}))
    assert skipped_b is not None and skipped_b.id == "g"  # skipping b enables nothing behind it
    assert next_item(q, {"a": "no"}, frozenset({"f", "g"})) is None
    first = next_item(q, {}, frozenset({"a"}))
    assert first is not None and first.id == "g"


def test_missing_required_counts_only_enabled_items() -> None:
    q = nested()
    assert missing_required(q, {}) == ["a"]
    assert missing_required(q, {"a": "yes"}) == []
    assert missing_required(q, {"a": "yes", "b": "yes"}) == ["c"]
    assert missing_required(q, {"a": "yes", "b": "yes", "c": 1}) == []
    assert missing_required(q, {"a": "no", "b": "yes"}) == []


def test_progress_is_one_based_and_follows_the_branches() -> None:
    q = nested()
    assert progress(q, {}) == (1, 2)  # a, g
    assert progress(q, {"a": "yes"}) == (2, 3)  # a, b, g
    assert progress(q, {"a": "yes", "b": "yes"}) == (3, 4)  # a, b, c, g
    assert progress(q, {"a": "yes", "b": "yes", "c": 5}) == (4, 6)  # + e, f
    assert progress(q, {"a": "yes", "b": "yes", "c": 5}, frozenset({"e"})) == (5, 6)
    done: dict[str, AnswerValue] = {"a": "no", "f": 1, "g": "x"}
    assert progress(q, done) == (3, 3)  # never beyond the last question
    assert progress(q, {"a": "no", "f": 1}, frozenset({"g"})) == (3, 3)
