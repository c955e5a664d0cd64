"""FHIR errors: every refusal of the API is an OperationOutcome with an HTTP status and, where one
element is at fault, its path (FHIRPath-like, e.g. `Patient.identifier[0].system`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class IssueType(StrEnum):
    """The OperationOutcome issue codes the API uses (value set issue-type)."""

    INVALID = "invalid"
    STRUCTURE = "structure"
    REQUIRED = "required"
    VALUE = "value"
    SECURITY = "security"
    LOGIN = "login"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    NOT_SUPPORTED = "not-supported"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    MULTIPLE_MATCHES = "multiple-matches"
    BUSINESS_RULE = "business-rule"
    TOO_LONG = "too-long"
    EXCEPTION = "exception"
    INFORMATIONAL = "informational"


class FhirError(Exception):
    """Raised anywhere below the routes; the app answers it as an OperationOutcome."""

    def __init__(
        self, status: int, code: IssueType, diagnostics: str, *, expression: str | None = None
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression


def operation_outcome(
    code: IssueType, diagnostics: str, *, expression: str | None = None, severity: str = "error"
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code.value, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_of(error: FhirError) -> dict[str, Any]:
    return operation_outcome(error.code, error.diagnostics, expression=error.expression)
