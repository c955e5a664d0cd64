"""SMART scopes (v2 `system/Patient.rs`, and v1 `system/Patient.read|write|*`), parsed and checked.

Pure: a token carries the scopes granted; each interaction needs one letter of one scope for its type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Questionnaire",
    "QuestionnaireResponse",
    "Task",
    "Communication",
    "Consent",
)
_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


class Interaction(StrEnum):
    """The SMART v2 letters."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


class BadScope(ValueError):
    """A scope string that is not `system/<Type or *>.<cruds>`, or names a type the API does not serve."""


@dataclass(frozen=True, slots=True)
class Scope:
    resource: str  # a resource type or "*"
    letters: frozenset[Interaction]

    def covers(self, other: Scope) -> bool:
        return self.resource in ("*", other.resource) and other.letters <= self.letters

    def __str__(self) -> str:
        return f"system/{self.resource}." + "".join(i.value for i in Interaction if i in self.letters)


def parse_scope(text: str) -> Scope:
    """One scope; BadScope says why it is not one this API grants (only `system/` scopes: there is no
    user or patient context in SMART Backend Services)."""
    found = _SCOPE.match(text)
    if found is None or not found.group(2):
        raise BadScope(f"{text!r} is not a scope of the form system/<Type>.<cruds> (e.g. system/Patient.rs)")
    resource, letters = found.group(1), _V1.get(found.group(2), found.group(2))
    if resource != "*" and resource not in RESOURCE_TYPES:
        raise BadScope(f"{text!r}: the API serves no {resource} resources")
    return Scope(resource, frozenset(Interaction(letter) for letter in letters))


def parse_scopes(text: str) -> list[Scope]:
    """A space-separated list, as OAuth sends it; openid/fhirUser/launch scopes are not for backends."""
    return [parse_scope(part) for part in text.split()]


def grantable(requested: list[Scope], registered: list[Scope]) -> list[Scope]:
    """The requested scopes the client's registration covers (a scope beyond it is left out)."""
    return [scope for scope in requested if any(mine.covers(scope) for mine in registered)]


def allows(granted: list[Scope], resource: str, interaction: Interaction) -> bool:
    wanted = Scope(resource, frozenset({interaction}))
    return any(scope.covers(wanted) for scope in granted)
