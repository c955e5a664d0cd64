"""The questionnaire editor's form and a definition, both ways: what each field shows, and the definition
an edit produces. Pure. Nothing is checked here: whatever was typed goes into the definition as typed, and
the questionnaire model's own validation says what is wrong (so an editor's typo is named by the same
rules as a broken file).

Field names: `title|<lang>`, `intro|<lang>`, `outro|<lang>`, `qkind`; per question n `i<n>|<field>`, per
total `s<n>|<field>`, per finding rule `r<n>|<field>`. Options, conditions and bands are one per line,
parts separated by `|`. Parts of a definition the form does not show (a group's questions, option
synonyms, standard codes) are kept from the draft, matched by the original id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from backend.content.kinds import Problem
from questionnaires.model import LANGS, ItemType, Kind, Operator, Severity

ITEM_TYPES = tuple(t.value for t in ItemType)
KINDS = tuple(k.value for k in Kind)
SEVERITIES = tuple(s.value for s in Severity)
OPERATORS = tuple(o.value for o in Operator)
MAX_LINES = 200  # options, conditions or bands of one entry: far beyond any real form
# "fever = yes", "score:phq9 >= 10", "temperature exists true"; longest operators first
_CONDITION = re.compile(
    r"^\s*(?P<ref>\S+?)\s*(?P<op>!=|>=|<=|=|>|<|\bexists\b|\bcontains\b)\s*(?P<value>.*?)\s*$"
)


def _texts(form: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {lang: form.get(f"{prefix}|{lang}", "").strip() for lang in LANGS}


def _optional_texts(form: Mapping[str, str], prefix: str) -> dict[str, str] | None:
    texts = _texts(form, prefix)
    return texts if any(texts.values()) else None


def _number(raw: str) -> int | float | str | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return raw  # the loader names it: "pain/min: 'ten' is not a number"
    if not number.is_finite():
        return raw
    return int(number) if number == number.to_integral_value() else float(raw)


def _value(raw: str) -> Any:
    raw = raw.strip()
    if raw.lower() in {"true", "false"}:
        return raw.lower() == "true"
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]  # a quoted code stays text ("1", "yes")
    number = _number(raw)
    return raw if number is None else number


def _lines(text: str) -> list[str]:
    return [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()][:MAX_LINES]


def parse_condition(line: str) -> dict[str, Any]:
    match = _CONDITION.match(line)
    if match is None:
        return {"text": line.strip()}  # the loader: "a condition names exactly one of item or score"
    ref = match["ref"]
    target = {"score": ref[6:]} if ref.startswith("score:") else {"item": ref}
    return {**target, "op": match["op"], "value": _value(match["value"])}


def condition_line(cond: Mapping[str, Any]) -> str:
    if "text" in cond and "item" not in cond and "score" not in cond:
        return str(cond["text"])
    ref = f"score:{cond['score']}" if cond.get("score") is not None else str(cond.get("item", ""))
    value = cond.get("value")
    shown = str(value).lower() if isinstance(value, bool) else "" if value is None else str(value)
    return f"{ref} {cond.get('op', '=')} {shown}".strip()


def _parts(line: str, size: int) -> list[str]:
    parts = [p.strip() for p in line.split("|")]
    return parts + [""] * (size - len(parts))


def _option(line: str, old: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    code, score, *texts = _parts(line, 2 + len(LANGS))
    option = dict(old.get(code, {}))  # keeps synonyms and the standard code of an option kept
    option.update(code=code, text=dict(zip(LANGS, texts, strict=False)))
    number = _number(score)
    if number is None:
        option.pop("score", None)
    else:
        option["score"] = number
    return option


def option_line(option: Mapping[str, Any]) -> str:
    texts = option.get("text") or {}
    score = option.get("score")
    return " | ".join(
        [
            str(option.get("code", "")),
            "" if score is None else str(score),
            *(str(texts.get(lang, "")) for lang in LANGS),
        ]
    )


def _band(line: str) -> dict[str, Any]:
    code, low, high, severity, *texts = _parts(line, 4 + len(LANGS))
    band: dict[str, Any] = {
        "code": code,
        "min": _number(low),
        "max": _number(high),
        "text": dict(zip(LANGS, texts, strict=False)),
    }
    if severity:
        band["severity"] = severity
    return band


def band_line(band: Mapping[str, Any]) -> str:
    texts = band.get("text") or {}
    return " | ".join(
        str(v)
        for v in (
            band.get("code", ""),
            band.get("min", ""),
            band.get("max", ""),
            band.get("severity") or "",
            *(texts.get(lang, "") for lang in LANGS),
        )
    )


def _entries(form: Mapping[str, str], letter: str) -> list[int]:
    """The numbers of the entries (questions, totals, rules) the form holds, in their order."""
    found = {int(m[1]) for name in form if (m := re.fullmatch(rf"{letter}(\d+)\|id", name))}
    return sorted(found)


def _set(entry: dict[str, Any], name: str, value: Any) -> None:
    if value is None or value == [] or value == "":
        entry.pop(name, None)
    else:
        entry[name] = value


def _item(form: Mapping[str, str], n: int, old: Mapping[str, Any]) -> dict[str, Any]:
    p = f"i{n}"
    item = dict(old)
    item["id"] = form.get(f"{p}|id", "").strip()
    item["type"] = form.get(f"{p}|type", "").strip()
    item["text"] = _texts(form, f"{p}|text")
    _set(item, "required", bool(form.get(f"{p}|required")) or None)
    _set(item, "hint", _optional_texts(form, f"{p}|hint"))
    _set(item, "unit", _optional_texts(form, f"{p}|unit"))
    _set(item, "min_label", _optional_texts(form, f"{p}|min_label"))
    _set(item, "max_label", _optional_texts(form, f"{p}|max_label"))
    _set(item, "min", _number(form.get(f"{p}|min", "")))
    _set(item, "max", _number(form.get(f"{p}|max", "")))
    olds = {str(o.get("code")): o for o in old.get("options") or [] if isinstance(o, Mapping)}
    _set(item, "options", [_option(line, olds) for line in _lines(form.get(f"{p}|options", ""))])
    _set(item, "enable_when", [parse_condition(line) for line in _lines(form.get(f"{p}|when", ""))])
    behaviour = form.get(f"{p}|behavior", "all")
    _set(item, "enable_behavior", None if behaviour == "all" else behaviour)
    return item


def _score(form: Mapping[str, str], n: int, old: Mapping[str, Any]) -> dict[str, Any]:
    p = f"s{n}"
    score = dict(old)
    score["id"] = form.get(f"{p}|id", "").strip()
    score["items"] = [i.strip() for i in form.get(f"{p}|items", "").split(",") if i.strip()]
    score["text"] = _texts(form, f"{p}|text")
    _set(score, "bands", [_band(line) for line in _lines(form.get(f"{p}|bands", ""))])
    return score


def _rule(form: Mapping[str, str], n: int, old: Mapping[str, Any]) -> dict[str, Any]:
    p = f"r{n}"
    rule = dict(old)
    rule["id"] = form.get(f"{p}|id", "").strip()
    rule["severity"] = form.get(f"{p}|severity", "").strip()
    rule["when"] = [parse_condition(line) for line in _lines(form.get(f"{p}|when", ""))]
    rule["text"] = _texts(form, f"{p}|text")
    return rule


def _merge(form: Mapping[str, str], letter: str, olds: list[Any], build: Any) -> list[dict[str, Any]]:
    by_id = {str(o.get("id")): o for o in olds if isinstance(o, Mapping)}
    out = []
    for n in _entries(form, letter):
        if form.get(f"{letter}{n}|remove"):
            continue
        new_id = form.get(f"{letter}{n}|id", "").strip()
        original = form.get(f"{letter}{n}|orig", "")
        if not new_id and not original:
            continue  # the empty "add one" block left empty
        out.append(build(form, n, by_id.get(original, {})))
    return out


def body_from_form(body: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The draft `body` with the editor's form applied."""
    out = dict(body)
    out["title"] = _texts(form, "title")
    for part in ("intro", "outro"):
        _set(out, part, _optional_texts(form, part))
    out["kind"] = form.get("qkind", str(body.get("kind", "follow_up")))
    out["items"] = _merge(form, "i", list(body.get("items") or []), _item)
    _set(out, "scores", _merge(form, "s", list(body.get("scores") or []), _score))
    _set(out, "rules", _merge(form, "r", list(body.get("rules") or []), _rule))
    return out


@dataclass
class Block:
    """One question, total or rule as the editor shows it, with the problems found in it."""

    n: int
    entry: Mapping[str, Any]
    problems: list[Problem] = field(default_factory=list)

    def texts(self, name: str) -> Mapping[str, Any]:
        value = self.entry.get(name)
        return value if isinstance(value, Mapping) else {}

    def lines(self, name: str) -> str:
        raw = self.entry.get(name) or []
        if isinstance(raw, Mapping):  # a rule's single condition may stand without a list
            raw = [raw]
        if not isinstance(raw, list):
            return str(raw)
        show = {"options": option_line, "bands": band_line}.get(name, condition_line)
        return "\n".join(show(e) if isinstance(e, Mapping) else str(e) for e in raw)

    @property
    def children(self) -> list[str]:
        return [str(c.get("id")) for c in self.entry.get("items") or [] if isinstance(c, Mapping)]


@dataclass(frozen=True)
class Sheet:
    items: list[Block]
    scores: list[Block]
    rules: list[Block]
    general: list[Problem]  # problems of the whole (its title, an id the loader could not place)


def sheet(body: Mapping[str, Any], problems: list[Problem]) -> Sheet:
    """The blocks of `body`, one empty block more of each (to add one), and each problem in its block."""

    def blocks(name: str) -> list[Block]:
        entries = [e for e in body.get(name) or [] if isinstance(e, Mapping)]
        return [Block(n, e) for n, e in enumerate(entries)] + [Block(len(entries), {})]

    items, scores, rules = blocks("items"), blocks("scores"), blocks("rules")
    nested = {c: b for b in items for c in b.children}
    by_item = {str(b.entry.get("id")): b for b in items if b.entry}
    general = []
    for problem in problems:
        head = problem.where.split("/")[0]
        target = None
        if head.startswith("score "):
            target = next((b for b in scores if f"score {b.entry.get('id')}" == head), None)
        elif head.startswith("rule "):
            target = next((b for b in rules if f"rule {b.entry.get('id')}" == head), None)
        else:
            target = by_item.get(head) or nested.get(head)
        if target is None:
            general.append(problem)
        else:
            target.problems.append(problem)
    return Sheet(items, scores, rules, general)
