"""The pure parts: SMART scopes and search parameters."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from backend.fhir.outcome import FhirError
from backend.fhir.params import IdentifierToken, parse_criteria, parse_date
from backend.fhir.scopes import BadScope, Interaction, allows, grantable, parse_scope, parse_scopes

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "resource", "letters"),
    [
        ("system/Patient.rs", "Patient", "rs"),
        ("system/Encounter.cruds", "Encounter", "cruds"),
        ("system/*.rs", "*", "rs"),
        ("system/Patient.read", "Patient", "rs"),
        ("system/Patient.write", "Patient", "cud"),
        ("system/Consent.*", "Consent", "cruds"),
        ("system/Task.s", "Task", "s"),
    ],
)
def test_scopes_parse(text: str, resource: str, letters: str) -> None:
    scope = parse_scope(text)
    assert scope.resource == resource
    assert scope.letters == frozenset(Interaction(letter) for letter in letters)


@pytest.mark.parametrize(
    "text",
    [
        "user/Patient.rs",
        "patient/*.read",
        "system/Patient.",
        "system/Patient.sr",
        "system/Observation.rs",
        "openid",
    ],
)
def test_other_scopes_are_refused(text: str) -> None:
    with pytest.raises(BadScope):
        parse_scope(text)


def test_granting_keeps_only_what_the_registration_covers() -> None:
    registered = parse_scopes("system/Patient.cruds system/*.rs")
    requested = parse_scopes("system/Patient.c system/Task.rs system/Encounter.u")
    assert [str(s) for s in grantable(requested, registered)] == ["system/Patient.c", "system/Task.rs"]
    granted = parse_scopes("system/Patient.rs")
    assert allows(granted, "Patient", Interaction.READ)
    assert not allows(granted, "Patient", Interaction.UPDATE)
    assert not allows(granted, "Encounter", Interaction.READ)


@pytest.mark.parametrize(
    ("text", "prefix", "start", "end"),
    [
        ("2026-12-01", "eq", datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2026, 12, 2, tzinfo=SHANGHAI)),
        ("ge2026-12", "ge", datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)),
        ("lt2026", "lt", datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)),
        (
            "gt2026-12-01T08:00:00Z",
            "gt",
            datetime.fromisoformat("2026-12-01T08:00:00+00:00"),
            datetime.fromisoformat("2026-12-01T08:00:01+00:00"),
        ),
        (
            "le2026-12-01T08:00",
            "le",
            datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI),
            datetime(2026, 12, 1, 8, 1, tzinfo=SHANGHAI),
        ),
    ],
)
def test_dates_cover_their_precision(text: str, prefix: str, start: datetime, end: datetime) -> None:
    bound = parse_date("date", text, SHANGHAI)
    assert (bound.prefix, bound.start, bound.end) == (prefix, start, end)


@pytest.mark.parametrize("text", ["yesterday", "sa2026-01-01", "2026-13-01", "2026-12-01T25:00"])
def test_bad_dates_are_400(text: str) -> None:
    with pytest.raises(FhirError) as refused:
        parse_date("date", text, SHANGHAI)
    assert refused.value.status == 400 and refused.value.expression == "date"


def test_criteria() -> None:
    criteria = parse_criteria(
        "Encounter",
        [("identifier", "urn:careloop:authority:HOSP|V1,V2"), ("patient", "Patient/7"), ("_count", "10")],
        SHANGHAI,
    )
    assert criteria.identifiers == [IdentifierToken("HOSP", "V1"), IdentifierToken(None, "V2")]
    assert (criteria.patient, criteria.count) == (7, 10)
    for bad in (
        [("name", "x")],
        [("_count", "0")],
        [("_count", "500")],
        [("patient", "Group/1")],
        [("date", "x")],
    ):
        with pytest.raises(FhirError):
            parse_criteria("Encounter", bad, SHANGHAI)
    with pytest.raises(FhirError, match="no search parameter 'date'"):
        parse_criteria("Patient", [("date", "2026")], SHANGHAI)
