"""Parsing authored questionnaire definitions (YAML mappings) into the model; errors name the item."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from questionnaires.model import (
    LANGS,
    Band,
    Blank,
    Coding,
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
    Texts,
)


class DefinitionError(ValueError):
    """A questionnaire definition is wrong; the message says where ("pain: ...") and what."""


def _texts(where: str, raw: Any, *, required: bool = True) -> Texts | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"{where}: expected texts for {', '.join(LANGS)}")
    missing = [lang for lang in LANGS if not isinstance(raw.get(lang), str) or not raw[lang].strip()]
    if missing:
        raise DefinitionError(f"{where}: missing text in {', '.join(missing)}")
    return {lang: str(raw[lang]) for lang in LANGS}


def _decimal(where: str, raw: Any) -> Decimal | None:
    if raw is None:
        return None
    try:
        number = Decimal(str(raw))
    except InvalidOperation as exc:
        raise DefinitionError(f"{where}: {raw!r} is not a number") from exc
    if not number.is_finite():
        raise DefinitionError(f"{where}: {raw!r} is not a number")
    return number


def _condition(where: str, raw: Any) -> Condition:
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"{where}: a condition is a mapping with item or score, op and value")
    try:
        operator = Operator(str(raw.get("op", "=")))
    except ValueError as exc:
        raise DefinitionError(f"{where}: unknown operator {raw.get('op')!r}") from exc
    item, score = raw.get("item"), raw.get("score")
    if (item is None) == (score is None):
        raise DefinitionError(f"{where}: a condition names exactly one of item or score")
    value = raw.get("value")
    if isinstance(value, float):
        value = Decimal(str(value))
    if (operator is Operator.EXISTS) != isinstance(value, bool):
        # An omitted value would silently mean "not answered"; YAML's unquoted yes/no are booleans.
        raise DefinitionError(f"{where}: only exists takes true or false (quote yes/no codes), got {value!r}")
    return Condition(operator=operator, value=value, item=item, score=score)


def _coding(where: str, raw: Any) -> Coding:
    if not isinstance(raw, Mapping) or not raw.get("system") or not raw.get("code"):
        raise DefinitionError(f"{where}: a code needs a system and a code")
    display = raw.get("display")
    return Coding(str(raw["system"]), str(raw["code"]), None if display is None else str(display))


def _codes(where: str, raw: Any) -> tuple[Coding, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DefinitionError(f"{where}: code is a list of {{system, code, display}}")
    return tuple(_coding(where, c) for c in raw)


def _option(where: str, raw: Any) -> Option:
    if not isinstance(raw, Mapping) or "code" not in raw:
        raise DefinitionError(f"{where}: an option needs a code")
    if isinstance(raw["code"], bool):  # YAML reads unquoted yes/no/on/off as booleans
        raise DefinitionError(f"{where}: option code {raw['code']!r} must be quoted")
    code = str(raw["code"])
    words = raw.get("words") or {}
    if not isinstance(words, Mapping):
        raise DefinitionError(f"{where}/{code}: words must map a language to a list")
    score = raw.get("score")
    if score is not None and not isinstance(score, int):
        raise DefinitionError(f"{where}/{code}: option score must be an integer")
    return Option(
        code=code,
        text=_texts(f"{where}/{code}", raw.get("text")) or {},
        score=score,
        words={str(lang): tuple(str(w) for w in ws) for lang, ws in words.items()},
        coding=None if raw.get("coding") is None else _coding(f"{where}/{code}", raw["coding"]),
    )


def _blank(item_id: str, raw: Any) -> Blank:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise DefinitionError(f"{item_id}: a blank needs an id")
    return Blank(str(raw["id"]), _texts(f"{item_id}/{raw['id']}", raw.get("text")) or {})


def _item(raw: Any, seen: set[str]) -> Item:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise DefinitionError(f"item without an id: {raw!r:.60}")
    item_id = str(raw["id"])
    if item_id in seen:
        raise DefinitionError(f"{item_id}: duplicate item id")
    seen.add(item_id)
    try:
        item_type = ItemType(str(raw.get("type")))
    except ValueError as exc:
        raise DefinitionError(f"{item_id}: unknown item type {raw.get('type')!r}") from exc
    options = tuple(_option(item_id, o) for o in raw.get("options") or [])
    behavior = raw.get("enable_behavior", "all")
    if behavior not in {"all", "any"}:
        raise DefinitionError(f"{item_id}: enable_behavior is all or any, not {behavior!r}")
    item = Item(
        id=item_id,
        type=item_type,
        text=_texts(item_id, raw.get("text")) or {},
        required=bool(raw.get("required", False)),
        statistics=bool(raw.get("statistics", item_type.answerable)),
        hint=_texts(f"{item_id}/hint", raw.get("hint"), required=False),
        options=options,
        minimum=_decimal(f"{item_id}/min", raw.get("min")),
        maximum=_decimal(f"{item_id}/max", raw.get("max")),
        unit=_texts(f"{item_id}/unit", raw.get("unit"), required=False),
        blanks=tuple(_blank(item_id, b) for b in raw.get("blanks") or []),
        items=tuple(_item(child, seen) for child in raw.get("items") or []),
        enable_when=tuple(_condition(f"{item_id}/enable_when", c) for c in raw.get("enable_when") or []),
        enable_any=behavior == "any",
        dimension=raw.get("dimension"),
        min_label=_texts(f"{item_id}/min_label", raw.get("min_label"), required=False),
        max_label=_texts(f"{item_id}/max_label", raw.get("max_label"), required=False),
        codes=_codes(item_id, raw.get("code")),
    )
    _check_item(item)
    return item


def _check_item(item: Item) -> None:
    where = item.id
    if item.type.has_options:
        if len(item.options) < 2:
            raise DefinitionError(f"{where}: a {item.type.value} item needs at least two options")
        codes = [o.code for o in item.options]
        if len(set(codes)) != len(codes):
            raise DefinitionError(f"{where}: duplicate option codes")
    elif item.options:
        raise DefinitionError(f"{where}: a {item.type.value} item has no options")
    if item.type in {ItemType.SCALE, ItemType.STAR_RATING} and (
        item.maximum is None or (item.type is ItemType.SCALE and item.minimum is None)
    ):
        raise DefinitionError(f"{where}: a {item.type.value} needs min and max")
    if item.minimum is not None and item.maximum is not None and item.minimum > item.maximum:
        raise DefinitionError(f"{where}: min {item.minimum} is above max {item.maximum}")
    if item.type is ItemType.MULTI_BLANK and not item.blanks:
        raise DefinitionError(f"{where}: a multi_blank item needs blanks")
    if len({b.id for b in item.blanks}) != len(item.blanks):
        raise DefinitionError(f"{where}: duplicate blank ids")
    if item.type is ItemType.GROUP and not item.items:
        raise DefinitionError(f"{where}: an empty group")
    if not item.type.answerable and item.required:
        raise DefinitionError(f"{where}: a {item.type.value} item cannot be required")


ORDERED = {Operator.GT, Operator.GE, Operator.LT, Operator.LE}


def _check_references(q: Questionnaire) -> None:
    ids = {item.id: item for item in q.walk()}
    score_ids = {s.id for s in q.scores}
    order = [item.id for item in q.walk()]

    def check(where: str, cond: Condition, *, before: str | None = None) -> None:
        if cond.item is not None:
            target = ids.get(cond.item)
            if target is None:
                raise DefinitionError(f"{where}: refers to unknown item {cond.item!r}")
            if not target.type.answerable:
                raise DefinitionError(f"{where}: {cond.item!r} has no answer to test")
            if before is not None and order.index(cond.item) >= order.index(before):
                raise DefinitionError(f"{where}: depends on {cond.item!r}, which is not asked before it")
            if (
                target.type.has_options
                and cond.operator in {Operator.EQ, Operator.NE, Operator.CONTAINS}
                and target.option(str(cond.value)) is None
            ):
                raise DefinitionError(f"{where}: {cond.item!r} has no option {cond.value!r}")
            # Conditions that can never hold would silently disable a branch or a finding.
            if cond.operator is Operator.CONTAINS and target.type is not ItemType.MULTIPLE_CHOICE:
                raise DefinitionError(f"{where}: contains needs multiple_choice, {cond.item!r} is not")
            if cond.operator in ORDERED and not target.type.is_numeric:
                raise DefinitionError(f"{where}: {cond.operator.value} needs a number, {cond.item!r} is not")
            numeric = target.type.is_numeric
        elif cond.score not in score_ids:
            raise DefinitionError(f"{where}: refers to unknown score {cond.score!r}")
        else:
            numeric = True
        if numeric and cond.operator is not Operator.EXISTS and not isinstance(cond.value, int | Decimal):
            raise DefinitionError(f"{where}: compares a number with {cond.value!r}")

    for item in q.walk():
        for cond in item.enable_when:
            if cond.score is not None:
                raise DefinitionError(f"{item.id}/enable_when: branch on answers, not scores")
            check(f"{item.id}/enable_when", cond, before=item.id)
    for score in q.scores:
        if not score.items:
            raise DefinitionError(f"score {score.id}: adds up no items")
        for item_id in score.items:
            target = ids.get(item_id)
            if target is None:
                raise DefinitionError(f"score {score.id}: unknown item {item_id!r}")
            if not (target.type.is_numeric or any(o.score is not None for o in target.options)):
                raise DefinitionError(f"score {score.id}: {item_id!r} has nothing to add up")
    for rule in q.rules:
        for cond in rule.when:
            check(f"rule {rule.id}", cond)


def _band(where: str, raw: Any) -> Band:
    if not isinstance(raw, Mapping) or not raw.get("code"):
        raise DefinitionError(f"{where}: a band needs a code, min and max")
    where = f"{where}/{raw['code']}"
    try:
        minimum, maximum = int(raw["min"]), int(raw["max"])
        severity = Severity(raw["severity"]) if raw.get("severity") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise DefinitionError(f"{where}: needs integer min and max and a known severity") from exc
    if minimum > maximum:
        raise DefinitionError(f"{where}: min {minimum} is above max {maximum}")
    return Band(code=str(raw["code"]), minimum=minimum, maximum=maximum,
                text=_texts(where, raw.get("text")) or {}, severity=severity)


def _score(raw: Any) -> Score:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise DefinitionError(f"score without an id: {raw!r:.60}")
    where = f"score {raw['id']}"
    bands = tuple(_band(where, b) for b in raw.get("bands") or [])
    ordered = sorted(bands, key=lambda b: b.minimum)
    for low, high in itertools.pairwise(ordered):
        if high.minimum <= low.maximum:
            raise DefinitionError(f"{where}: bands {low.code} and {high.code} overlap")
    return Score(id=str(raw["id"]), items=tuple(str(i) for i in raw.get("items") or []),
                 text=_texts(where, raw.get("text")) or {}, bands=bands)


def _rule(raw: Any) -> Rule:
    if not isinstance(raw, Mapping) or not raw.get("id"):
        raise DefinitionError(f"rule without an id: {raw!r:.60}")
    where = f"rule {raw['id']}"
    try:
        severity = Severity(str(raw.get("severity")))
    except ValueError as exc:
        raise DefinitionError(f"{where}: unknown severity {raw.get('severity')!r}") from exc
    when = raw.get("when")
    conditions = when if isinstance(when, list) else [when]
    if not conditions:  # all() of nothing holds: the rule would fire on every response
        raise DefinitionError(f"{where}: has no conditions")
    return Rule(id=str(raw["id"]), when=tuple(_condition(where, c) for c in conditions),
                severity=severity, text=_texts(where, raw.get("text")) or {})


def _languages(qid: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return LANGS
    if not isinstance(raw, list) or not raw or any(lang not in LANGS for lang in raw):
        raise DefinitionError(f"{qid}: languages is a list of some of {', '.join(LANGS)}")
    return tuple(lang for lang in LANGS if lang in raw)


def parse_questionnaire(data: Any) -> Questionnaire:
    if not isinstance(data, Mapping):
        raise DefinitionError("a questionnaire file must be a mapping")
    qid = str(data.get("id") or "")
    if not qid:
        raise DefinitionError("questionnaire has no id")
    try:
        version = int(data["version"])
        kind = Kind(str(data.get("kind", "follow_up")))
    except (KeyError, TypeError, ValueError) as exc:
        raise DefinitionError(f"{qid}: needs an integer version and a known kind") from exc
    seen: set[str] = set()
    items = tuple(_item(raw, seen) for raw in data.get("items") or [])
    if not items:
        raise DefinitionError(f"{qid}: has no items")
    scores = tuple(_score(raw) for raw in data.get("scores") or [])
    rules = tuple(_rule(raw) for raw in data.get("rules") or [])
    for what, ids in (("score", [sc.id for sc in scores]), ("rule", [r.id for r in rules])):
        if len(set(ids)) != len(ids):
            raise DefinitionError(f"{qid}: duplicate {what} ids")
    q = Questionnaire(
        id=qid, version=version, kind=kind, title=_texts(f"{qid}/title", data.get("title")) or {},
        items=items, scores=scores, rules=rules,
        intro=_texts(f"{qid}/intro", data.get("intro"), required=False),
        outro=_texts(f"{qid}/outro", data.get("outro"), required=False),
        codes=_codes(qid, data.get("code")),
        languages=_languages(qid, data.get("languages")),
    )
    _check_references(q)
    return q


def definition_problems(data: Any) -> list[DefinitionError]:
    """Every problem an editor can fix in one pass, not only the first: each item, score and rule is
    parsed on its own (by the same rules as parse_questionnaire), then the whole is parsed for what only
    the whole shows (no items, a bad version, cross-references). Empty: parse_questionnaire accepts
    `data`."""
    if not isinstance(data, Mapping):
        return [DefinitionError("a questionnaire file must be a mapping")]
    found: list[DefinitionError] = []
    qid = str(data.get("id") or "")

    def attempt(check: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        try:
            check(*args, **kwargs)
        except DefinitionError as exc:
            found.append(exc)

    attempt(_texts, f"{qid}/title", data.get("title"))
    for part in ("intro", "outro"):
        attempt(_texts, f"{qid}/{part}", data.get(part), required=False)
    seen: set[str] = set()
    for raw in data.get("items") or []:
        attempt(_item, raw, seen)
    for raw in data.get("scores") or []:
        attempt(_score, raw)
    for raw in data.get("rules") or []:
        attempt(_rule, raw)
    try:  # the whole: ids, version, kind, no items, and cross-references once the parts are sound
        parse_questionnaire(data)
    except DefinitionError as exc:
        if str(exc) not in {str(e) for e in found}:
            found.append(exc)
    return found
