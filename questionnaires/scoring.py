"""Scores, severity bands and finding rules: what in a response needs a staff member's attention."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from questionnaires.logic import Answers, holds, prune
from questionnaires.model import Band, Item, Questionnaire, Severity, Texts


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # the rule id, or "<score>:<band>" for a band finding
    severity: Severity
    text: Texts
    items: tuple[str, ...]  # the items whose answers raised it


@dataclass(frozen=True, slots=True)
class Evaluation:
    scores: Mapping[str, int]
    bands: Mapping[str, Band]
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Severity | None:
        order = list(Severity)
        return max((f.severity for f in self.findings), key=order.index, default=None)


def item_points(item: Item, value: object) -> int | None:
    """What an answer adds to a score: its option score(s) or its number."""
    if item.type.has_options:
        codes = value if isinstance(value, list) else [value]
        options = [item.option(str(code)) for code in codes]
        points = [o.score for o in options if o is not None and o.score is not None]
        return sum(points) if points else None
    if item.type.is_numeric and isinstance(value, int | Decimal) and not isinstance(value, bool):
        return int(value)
    return None


def evaluate(q: Questionnaire, answers: Answers) -> Evaluation:
    answers = prune(q, answers)
    scores: dict[str, int] = {}
    bands: dict[str, Band] = {}
    findings: list[Finding] = []
    for score in q.scores:
        parts = [item_points(q.item(i), answers[i]) for i in score.items if i in answers]
        if not any(p is not None for p in parts):
            continue
        total = sum(p for p in parts if p is not None)
        scores[score.id] = total
        band = next((b for b in score.bands if b.minimum <= total <= b.maximum), None)
        if band is not None:
            bands[score.id] = band
            if band.severity is not None:
                findings.append(Finding(f"{score.id}:{band.code}", band.severity, band.text, score.items))
    score_items = {score.id: score.items for score in q.scores}
    for rule in q.rules:
        if all(holds(c, answers, scores) for c in rule.when):
            # A condition on a score was raised by the score's items; keep order, drop repeats.
            named = [(c.item,) if c.item else score_items.get(c.score or "", ()) for c in rule.when]
            items = tuple(dict.fromkeys(i for part in named for i in part))
            findings.append(Finding(rule.id, rule.severity, rule.text, items))
    return Evaluation(scores, bands, tuple(findings))
