"""Building questionnaire definitions (the dicts the loader reads) in tests: every text in the three
languages from its English, items, conditions, score bands and rules in one line each."""

from __future__ import annotations

from typing import Any

Definition = dict[str, Any]


def texts(en: str) -> dict[str, str]:
    return {"zh-CN": f"{en}（中文）", "vi": f"{en} (tiếng Việt)", "en": en}


def options(*codes: str, scores: bool = False) -> list[dict[str, Any]]:
    """Options named after their codes, scored 0, 1, 2 … when asked."""
    return [
        {"code": code, "text": texts(code.title())} | ({"score": n} if scores else {})
        for n, code in enumerate(codes)
    ]


def yes_no() -> list[dict[str, Any]]:
    return [{"code": "yes", "text": texts("Yes")}, {"code": "no", "text": texts("No")}]


def question(item_id: str, kind: str, text: str, **fields: Any) -> dict[str, Any]:
    """An item; `fields` are the definition's own keys (min, max, options, enable_when …), given as the
    loader reads them, except that *_label, hint and unit are English and get their translations."""
    for key in ("hint", "unit", "min_label", "max_label"):
        if isinstance(fields.get(key), str):
            fields[key] = texts(fields[key])
    return {"id": item_id, "type": kind, "text": texts(text), **fields}


def group(item_id: str, text: str, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return question(item_id, "group", text, **fields, items=items)


def when(subject: str, op: str, value: Any, *, of: str = "item") -> dict[str, Any]:
    """A condition on an item's answer, or on a score's value with of="score"."""
    return {of: subject, "op": op, "value": value}


def band(code: str, low: int, high: int, text: str, severity: str | None = None) -> dict[str, Any]:
    return (
        {"code": code, "min": low, "max": high}
        | ({"severity": severity} if severity else {})
        | {"text": texts(text)}
    )


def score(score_id: str, items: list[str], text: str, bands: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": score_id, "items": items, "text": texts(text), "bands": bands}


def finding(rule_id: str, conditions: dict[str, Any] | list[dict[str, Any]], severity: str, text: str) -> Any:
    """A rule: when its condition (or every one of a list) holds, a finding of this severity."""
    return {"id": rule_id, "when": conditions, "severity": severity, "text": texts(text)}


def definition(
    questionnaire_id: str,
    version: int,
    kind: str,
    title: str,
    items: list[dict[str, Any]],
    *,
    scores: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] | None = None,
    **words: str,
) -> Definition:
    """A whole definition; `words` are the English of intro, outro and the like."""
    data: Definition = {"id": questionnaire_id, "version": version, "kind": kind, "title": texts(title)}
    data |= {key: texts(value) for key, value in words.items()}
    data["items"] = items
    if scores is not None:
        data["scores"] = scores
    if rules is not None:
        data["rules"] = rules
    return data
