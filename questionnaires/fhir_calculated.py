"""Recognising SDC totals: a `calculatedExpression` that adds up the weights of some items' answers.

CareLoop does not run FHIRPath. A published form's total is almost always written in one of a few
shapes (the NLM rule editor's `iif(%any_questions_answered, iif(%a.exists(), %a, 0) + …, {})` over
one `variable` per item, plain `%a + %b + …`, or the weight expressions written inline), and each of
those is a CareLoop score: the sum of the items' option scores. Anything else is not guessed at: the
caller keeps the item as display-only text and says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HL7 = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
CALCULATED = SDC + "sdc-questionnaire-calculatedExpression"
VARIABLE = HL7 + "variable"

# What marks an expression as "the score of the answer": the R4 and R5 extensions and their functions.
_WEIGHT = re.compile(r"ordinalValue|itemWeight|iso21090-CO-value|\.ordinal\(\)|\.weight\(\)")
_LINK = re.compile(r"linkId\s*=\s*'([^']+)'")
_NAME = re.compile(r"^%([A-Za-z][A-Za-z0-9_\-]*)$")
_GUARDED = re.compile(
    r"^iif\(\s*%([A-Za-z][A-Za-z0-9_\-]*)\.exists\(\)\s*,\s*%([A-Za-z][A-Za-z0-9_\-]*)\s*,\s*0\s*\)$"
)
_ANY = re.compile(r"^iif\(\s*%([A-Za-z][A-Za-z0-9_\-]*)\s*,(.*),\s*\{\s*\}\s*\)$", re.DOTALL)
_EXISTS = re.compile(r"^%([A-Za-z][A-Za-z0-9_\-]*)\.exists\(\)$")


@dataclass(frozen=True, slots=True)
class Sum:
    """A total recognised as the sum of these items' answer weights (linkIds, in the expression's order)."""

    items: tuple[str, ...]


def weight_of(expression: str, numeric: frozenset[str] = frozenset()) -> str | None:
    """The linkId whose answer's weight (or, for a numeric item, value) `expression` is, else None."""
    links = set(_LINK.findall(expression))
    if len(links) != 1:
        return None
    link = str(links.pop())
    if _WEIGHT.search(expression):
        return link
    plain = re.sub(r"\s+", "", expression)
    if link in numeric and re.search(r"\.answer\.value(\.first\(\))?$", plain):
        return link
    return None


def _split_sum(expression: str) -> list[str] | None:
    """The top-level `+` terms, or None when brackets do not balance."""
    terms, depth, start, quoted = [], 0, 0, False
    for index, char in enumerate(expression):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
            if depth < 0:
                return None
        elif char == "+" and depth == 0:
            terms.append(expression[start:index].strip())
            start = index + 1
    if depth != 0 or quoted:
        return None
    terms.append(expression[start:].strip())
    return terms


def _is_any_answered(expression: str | None, names: set[str]) -> bool:
    """`%a.exists() or %b.exists() …` over exactly the summed variables."""
    if expression is None:
        return False
    parts = [p.strip() for p in re.split(r"\s+or\s+", expression.strip())]
    found = {m.group(1) for p in parts if (m := _EXISTS.match(p))}
    return len(found) == len(parts) and found == names


def recognise_sum(expression: str, variables: Mapping[str, str], numeric: Sequence[str] = ()) -> Sum | None:
    """The items `expression` adds up, when it is a plain sum of answer weights; else None.

    `variables` are the `variable` extensions in scope (name -> expression); `numeric` the linkIds of
    numeric questions, whose value (rather than an option weight) a sum may add."""
    numbers = frozenset(numeric)
    text = expression.strip()
    wrapper = _ANY.match(text)
    guard: str | None = None
    if wrapper is not None:
        guard, text = wrapper.group(1), wrapper.group(2).strip()
    terms = _split_sum(text)
    if not terms or any(not term for term in terms):
        return None
    items: list[str] = []
    names: set[str] = set()
    for term in terms:
        guarded = _GUARDED.match(term)
        if guarded is not None and guarded.group(1) != guarded.group(2):
            return None
        named = guarded.group(1) if guarded else (m.group(1) if (m := _NAME.match(term)) else None)
        if named is not None:
            if named not in variables:
                return None
            names.add(named)
            link = weight_of(variables[named], numbers)
        else:
            link = weight_of(term, numbers)
        if link is None or link in items:
            return None
        items.append(link)
    if guard is not None and not _is_any_answered(variables.get(guard), names):
        return None
    return Sum(tuple(items))


def sum_expression(items: Sequence[tuple[str, bool]]) -> tuple[list[dict[str, object]], str]:
    """The standard form CareLoop exports a total in: one `variable` per item ((linkId, has options)),
    and the rule editor's guarded sum, which is empty until some item is answered (as CareLoop's score)."""
    variables: list[dict[str, object]] = []
    names = []
    for index, (link, scored) in enumerate(items):
        name = f"s{index + 1}"
        names.append(name)
        path = f"%resource.repeat(item).where(linkId='{link}').answer.value"
        variables.append(
            {
                "url": VARIABLE,
                "valueExpression": {
                    "name": name,
                    "language": "text/fhirpath",
                    "expression": path + (".ordinal()" if scored else ""),
                },
            }
        )
    variables.append(
        {
            "url": VARIABLE,
            "valueExpression": {
                "name": "answered",
                "language": "text/fhirpath",
                "expression": " or ".join(f"%{n}.exists()" for n in names),
            },
        }
    )
    total = " + ".join(f"iif(%{n}.exists(), %{n}, 0)" for n in names)
    return variables, f"iif(%answered, {total}, {{}})"
