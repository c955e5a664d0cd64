"""Branching and progress: which items are enabled by earlier answers, what to ask next, what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from questionnaires.model import AnswerValue, Condition, Item, Operator, Questionnaire

Answers = Mapping[str, AnswerValue]


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    # "nan" or "inf" typed as text must not compare (NaN ordering raises InvalidOperation).
    return number if number.is_finite() else None


def holds(cond: Condition, answers: Answers, scores: Mapping[str, int] | None = None) -> bool:
    """Does the condition hold for these answers (and computed scores)? Unanswered never compares."""
    if cond.item is not None:
        present = cond.item in answers
        actual: object = answers.get(cond.item)
    else:
        present = scores is not None and cond.score in scores
        actual = scores.get(cond.score) if scores is not None and cond.score is not None else None
    if cond.operator is Operator.EXISTS:
        return present == bool(cond.value)
    if not present:
        return False
    if cond.operator is Operator.CONTAINS:
        return isinstance(actual, list) and str(cond.value) in actual
    if isinstance(actual, list):  # multiple choice: = and != test membership
        if cond.operator is Operator.EQ:
            return str(cond.value) in actual
        if cond.operator is Operator.NE:
            return str(cond.value) not in actual
        return False
    left, right = _number(actual), _number(cond.value)
    if left is not None and right is not None:
        return {
            Operator.EQ: left == right,
            Operator.NE: left != right,
            Operator.GT: left > right,
            Operator.GE: left >= right,
            Operator.LT: left < right,
            Operator.LE: left <= right,
        }[cond.operator]
    if cond.operator is Operator.EQ:
        return str(actual) == str(cond.value)
    if cond.operator is Operator.NE:
        return str(actual) != str(cond.value)
    return False


def _parents(q: Questionnaire) -> dict[str, Item]:
    parents: dict[str, Item] = {}
    for item in q.walk():
        for child in item.items:
            parents[child.id] = item
    return parents


def _own_conditions_hold(item: Item, answers: Answers) -> bool:
    if not item.enable_when:
        return True
    results = [holds(c, answers) for c in item.enable_when]
    return any(results) if item.enable_any else all(results)


def _enabled_ids(q: Questionnaire, answers: Answers) -> set[str]:
    """Ids of every enabled item (groups and displays too). An answer to a disabled item does not
    count: conditions only refer to earlier items (the loader checks), so one pass in order sees
    exactly the answers that are in effect, and a disabled item's dependants are disabled in turn."""
    parents = _parents(q)
    enabled: set[str] = set()
    in_effect: dict[str, AnswerValue] = {}
    for item in q.walk():
        parent = parents.get(item.id)
        if (parent is None or parent.id in enabled) and _own_conditions_hold(item, in_effect):
            enabled.add(item.id)
            if item.id in answers:
                in_effect[item.id] = answers[item.id]
    return enabled


def is_enabled(q: Questionnaire, item: Item, answers: Answers) -> bool:
    """Enabled by its own conditions and by every enclosing group's, on the answers still in effect."""
    return item.id in _enabled_ids(q, answers)


def enabled_items(q: Questionnaire, answers: Answers) -> list[Item]:
    """Answerable items that are enabled now, in order. Later items see only earlier answers' effects."""
    enabled = _enabled_ids(q, answers)
    return [item for item in q.answerable() if item.id in enabled]


def prune(q: Questionnaire, answers: Answers) -> dict[str, AnswerValue]:
    """Drop answers to items that a changed earlier answer has disabled, cascading to their dependants."""
    enabled = _enabled_ids(q, answers)
    return {key: value for key, value in answers.items() if key in enabled}


def next_item(q: Questionnaire, answers: Answers, skipped: frozenset[str] = frozenset()) -> Item | None:
    """The first enabled question not yet answered or skipped: what a chat or a call asks next."""
    for item in enabled_items(q, answers):
        if item.id not in answers and item.id not in skipped:
            return item
    return None


def missing_required(q: Questionnaire, answers: Answers) -> list[str]:
    return [item.id for item in enabled_items(q, answers) if item.required and item.id not in answers]


def progress(q: Questionnaire, answers: Answers, skipped: frozenset[str] = frozenset()) -> tuple[int, int]:
    """(position of the next question, how many enabled questions there are now), both 1-based."""
    enabled = enabled_items(q, answers)
    done = sum(1 for item in enabled if item.id in answers or item.id in skipped)
    return min(done + 1, len(enabled)), len(enabled)
