"""The web form channel: a questionnaire as phone-sized form fields, and a form post back into raw answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from questionnaires.model import AnswerValue, Condition, Item, ItemType, Questionnaire


@dataclass(frozen=True)
class RawAnswer:
    """What the browser sent for one item: typed text, or the codes of the options picked."""

    text: str = ""
    payload: str | list[str] | None = None

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.payload


@dataclass
class Field:
    item: Item
    kind: str  # the template macro to use
    label: str
    hint: str | None
    required: bool
    depth: int
    value: Any  # what to show: text, a code, a set of codes, blank id -> text
    error: str | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)  # (code, label)
    blanks: list[tuple[str, str]] = field(default_factory=list)  # (blank id, label)
    unit: str | None = None
    min_label: str | None = None
    max_label: str | None = None
    conditions: str = ""  # JSON for the page script; empty when always shown
    enable_any: bool = False


def _conditions(conditions: Sequence[Condition]) -> str:
    if not conditions:
        return ""
    return json.dumps(
        [
            {"item": c.item, "op": c.operator.value, "value": str(c.value) if c.value is not None else None}
            for c in conditions
        ]
    )


def _shown(item: Item, value: AnswerValue | None) -> Any:
    if value is None:
        return (
            set()
            if item.type is ItemType.MULTIPLE_CHOICE
            else ({} if item.type is ItemType.MULTI_BLANK else "")
        )
    if isinstance(value, list):
        return set(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return str(value)
    return value


def _choices(item: Item, lang: str) -> list[tuple[str, str]]:
    if item.type.has_options:
        return [(o.code, o.text[lang]) for o in item.options]
    if item.type in {ItemType.SCALE, ItemType.STAR_RATING}:
        low = int(item.minimum) if item.minimum is not None else 1
        high = int(item.maximum or 5)
        return [(str(n), str(n)) for n in range(low, high + 1)]
    return []


KIND = {
    ItemType.SINGLE_CHOICE: "radio",
    ItemType.MULTIPLE_CHOICE: "checkbox",
    ItemType.DROPDOWN: "select",
    ItemType.STAR_RATING: "stars",
    ItemType.SCALE: "scale",
    ItemType.INTEGER: "number",
    ItemType.DECIMAL: "number",
    ItemType.DATE: "date",
    ItemType.SHORT_TEXT: "text",
    ItemType.LONG_TEXT: "textarea",
    ItemType.MULTI_BLANK: "blanks",
    ItemType.DISPLAY: "display",
    ItemType.GROUP: "group",
}


def fields(
    q: Questionnaire, lang: str, answers: Mapping[str, AnswerValue], errors: Mapping[str, str] | None = None
) -> list[Field]:
    """Every item in order, groups first, with what to show and how to branch in the browser."""
    out: list[Field] = []

    def visit(items: Sequence[Item], depth: int) -> None:
        for item in items:
            out.append(
                Field(
                    item=item,
                    kind=KIND[item.type],
                    label=item.text[lang],
                    hint=item.hint[lang] if item.hint else None,
                    required=item.required,
                    depth=depth,
                    value=_shown(item, answers.get(item.id)),
                    error=(errors or {}).get(item.id),
                    choices=_choices(item, lang),
                    blanks=[(b.id, b.text[lang]) for b in item.blanks],
                    unit=item.unit[lang] if item.unit else None,
                    min_label=item.min_label[lang] if item.min_label else None,
                    max_label=item.max_label[lang] if item.max_label else None,
                    conditions=_conditions(item.enable_when),
                    enable_any=item.enable_any,
                )
            )
            visit(item.items, depth + 1)

    visit(q.items, 0)
    return out


def read_post(q: Questionnaire, form: Mapping[str, Sequence[str]]) -> dict[str, RawAnswer]:
    """Raw answers from a form post (field names are item ids; blanks are `<item>.<blank>`)."""
    raw: dict[str, RawAnswer] = {}
    for item in q.answerable():
        values = [v for v in form.get(item.id, []) if v.strip()]
        if item.type is ItemType.MULTIPLE_CHOICE:
            if values:
                raw[item.id] = RawAnswer(payload=values)
        elif item.type.has_options:
            if values:
                raw[item.id] = RawAnswer(payload=values[0])
        elif item.type is ItemType.MULTI_BLANK:
            parts = [(form.get(f"{item.id}.{b.id}") or [""])[0].strip() for b in item.blanks]
            if any(parts):
                raw[item.id] = RawAnswer(text="\n".join(parts))
        elif values:
            raw[item.id] = RawAnswer(text=values[0])
    return raw
