"""Known instruments recognised by LOINC code, and CareLoop's clinical rules offered for them.

A published PHQ-9 carries its questions and scores but not what a hospital must do with the answers:
that item 9 above "not at all" needs a call whatever the total, or which totals are severe. CareLoop's
own authored version of the instrument (content/questionnaires/phq9.yaml) holds those rules; they are
translated onto the imported form's items (matched by LOINC item code, options matched by score) and
*offered* in the import report. They are added only when the approver accepts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from questionnaires.fhir_report import ImportReport, NoteCode, NoteKind, Offered
from questionnaires.model import Condition, Questionnaire, Score


@dataclass(frozen=True, slots=True)
class Instrument:
    loinc: str  # the panel's LOINC code
    name: str
    reference: str  # the id of CareLoop's authored version, whose rules are offered
    items: tuple[str, ...]  # LOINC codes of the scored items, in the order of the reference's total
    total: str  # LOINC code of the total score


# LOINC codes as in the NLM LHC-Forms renditions of the panels (loinc.org/44249-1, 55757-9, 69737-5).
# PHQ-2's reference lives in content/questionnaires/instruments/ (offered, never published by itself).
# EPDS (71354-5) and AUDIT-C (72109-2) join once their rules are authored and reviewed: AUDIT-C's
# cut-off depends on sex, which a questionnaire rule cannot see.
INSTRUMENTS: Mapping[str, Instrument] = {
    i.loinc: i
    for i in (
        Instrument(
            "44249-1",
            "PHQ-9",
            "phq9",
            (
                "44250-9",
                "44255-8",
                "44259-0",
                "44254-1",
                "44251-7",
                "44258-2",
                "44252-5",
                "44253-3",
                "44260-8",
            ),
            "44261-6",
        ),
        Instrument("55757-9", "PHQ-2", "phq2", ("44250-9", "44255-8"), "55758-7"),
        Instrument(
            "69737-5",
            "GAD-7",
            "gad7",
            ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
            "70274-6",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Offer:
    instrument: Instrument
    score: dict[str, Any]  # the total with CareLoop's bands, in the imported form's items
    rules: tuple[dict[str, Any], ...]
    offered: tuple[Offered, ...]


class _Unmapped(Exception):
    """A reference condition has no counterpart in the imported form."""

    def __init__(self, code: NoteCode, **params: str) -> None:
        super().__init__(code.value)
        self.code, self.params = code, params


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(item)
        out += _walk(item.get("items") or [])
    return out


def _find(items: list[dict[str, Any]], loinc: str) -> dict[str, Any] | None:
    for item in items:
        if any(c.get("code") == loinc for c in item.get("code") or []):
            return item
    return next((i for i in items if str(i["id"]).rstrip("/").endswith(loinc)), None)


def _reference_total(reference: Questionnaire, size: int) -> Score | None:
    return next((s for s in reference.scores if len(s.items) == size), None)


def _condition(
    cond: Condition,
    reference: Questionnaire,
    mapped: Mapping[str, dict[str, Any]],
    score_ids: Mapping[str, str],
) -> dict[str, Any]:
    if cond.score is not None:
        if cond.score not in score_ids:
            raise _Unmapped(NoteCode.RULE_WITHOUT_ITEM, subject=cond.score)
        return {"score": score_ids[cond.score], "op": cond.operator.value, "value": cond.value}
    target = mapped.get(str(cond.item))
    if target is None:
        raise _Unmapped(NoteCode.RULE_WITHOUT_ITEM, subject=str(cond.item))
    value = cond.value
    option = reference.item(str(cond.item)).option(str(value))
    if option is not None:
        same = [o for o in target["options"] if o.get("score") is not None and o["score"] == option.score]
        if option.score is None or len(same) != 1:
            raise _Unmapped(NoteCode.RULE_WITHOUT_OPTION, item=str(target["id"]), option=option.code)
        value = same[0]["code"]
    return {"item": target["id"], "op": cond.operator.value, "value": value}


def _said(cond: Mapping[str, Any]) -> str:
    return f"{cond.get('item') or cond.get('score')} {cond['op']} {cond['value']}"


def offer(
    definition: Mapping[str, Any], reference: Questionnaire, instrument: Instrument, report: ImportReport
) -> Offer | None:
    """CareLoop's bands and rules for `instrument`, in the imported definition's items; None when the
    form's scored items cannot all be matched (then nothing can be offered safely)."""
    items = _walk(list(definition["items"]))
    total = _reference_total(reference, len(instrument.items))
    if total is None:
        return None
    mapped: dict[str, dict[str, Any]] = {}
    for ref_id, loinc in zip(total.items, instrument.items, strict=True):
        found = _find(items, loinc)
        if found is None:
            return None
        mapped[ref_id] = found
    links = [mapped[i]["id"] for i in total.items]
    existing = next((s for s in definition["scores"] if set(s["items"]) == set(links)), None)
    score_id = existing["id"] if existing is not None else total.id
    bands: list[dict[str, Any]] = [
        {"code": b.code, "min": b.minimum, "max": b.maximum, "text": dict(b.text)}
        | ({"severity": b.severity.value} if b.severity is not None else {})
        for b in total.bands
    ]
    score: dict[str, Any] = {
        "id": score_id,
        "items": links,
        "text": dict(existing["text"] if existing else total.text),
    }
    score["bands"] = bands
    lang = report.language
    offered = [
        Offered(f"{score_id}:{b['code']}", b.get("severity", ""), b["text"][lang],
                f"{score_id} {b['min']}–{b['max']}")
        for b in bands
    ]  # fmt: skip
    rules = []
    for rule in reference.rules:
        try:
            when = [_condition(c, reference, mapped, {total.id: score_id}) for c in rule.when]
        except _Unmapped as exc:
            report.add(NoteKind.DROPPED, exc.code, rule=rule.id, **exc.params)
            continue
        rules.append({"id": rule.id, "when": when, "severity": rule.severity.value, "text": dict(rule.text)})
        offered.append(Offered(rule.id, rule.severity.value, rule.text[lang], " and ".join(map(_said, when))))
    return Offer(instrument, score, tuple(rules), tuple(offered))


def accept(definition: dict[str, Any], chosen: Offer) -> None:
    """Adds the offered total bands and rules to the definition (the approver accepted them)."""
    scores = [s for s in definition["scores"] if s["id"] != chosen.score["id"]]
    definition["scores"] = [*scores, chosen.score]
    taken = {r["id"] for r in definition["rules"]}
    definition["rules"] = [*definition["rules"], *(r for r in chosen.rules if r["id"] not in taken)]
    definition["kind"] = "screening"
