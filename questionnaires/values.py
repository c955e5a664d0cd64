"""Answer values to and from JSON, by item type (decimals as strings, dates as ISO dates)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from questionnaires.model import AnswerValue, Item, ItemType


class BadStoredValue(ValueError):
    """A stored answer does not fit its item's type."""


def to_json(item: Item, value: AnswerValue) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_json(item: Item, raw: Any) -> AnswerValue:
    try:
        if item.type is ItemType.MULTIPLE_CHOICE:
            return [str(code) for code in raw]
        if item.type.has_options or item.type in {ItemType.SHORT_TEXT, ItemType.LONG_TEXT}:
            return str(raw)
        if item.type in {ItemType.STAR_RATING, ItemType.SCALE, ItemType.INTEGER}:
            return int(raw)
        if item.type is ItemType.DECIMAL:
            return Decimal(str(raw))
        if item.type is ItemType.DATE:
            return date.fromisoformat(str(raw))
        if item.type is ItemType.MULTI_BLANK:
            return {str(k): str(v) for k, v in dict(raw).items()}
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise BadStoredValue(f"{item.id}: {raw!r} is not a {item.type.value} answer") from exc
    raise BadStoredValue(f"{item.id}: a {item.type.value} item has no answer")
