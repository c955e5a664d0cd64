"""Why a row cannot be imported: a closed set of reasons, each a staff-UI string translated in the
catalogues. A problem is stored as "reason · detail", the detail being a column name or a row number,
never a cell's value (the job row must not hold patient data)."""

from __future__ import annotations

from enum import StrEnum

SEPARATOR = " · "


class Problem(StrEnum):
    MISSING = "required value missing"
    TOO_LONG = "value too long"
    BAD_DATE = "not a date"
    BAD_DATETIME = "not a date and time"
    FUTURE = "date in the future"
    BAD_SEX = "unknown sex"
    BAD_PHONE = "invalid phone number"
    BAD_EMAIL = "invalid email address"
    BAD_LANGUAGE = "unknown language"
    BAD_KIND = "unknown visit type"
    BAD_ICD = "not an ICD-10 code"
    DISCHARGE_BEFORE_ADMISSION = "discharge before admission"
    UNKNOWN_DEPARTMENT = "unknown department"
    UNKNOWN_WARD = "unknown ward"
    UNKNOWN_PATIENT = "unknown patient"
    BAD_LIST = "unknown exclusion list"
    BAD_CODE = "not a code (letters, digits, dot, dash or underscore; at most 32)"
    BAD_CLINICIAN_KIND = "unknown kind of clinician"
    NO_NAME = "no name in any language"
    BAD_USERNAME = "not a username (lower-case letters, digits, dot, dash or underscore; 2 to 64)"
    UNKNOWN_ROLE = "unknown role"
    ONE_ROLE = "more than one role: an account holds one"
    BAD_ACTIVE = "not yes or no"
    LAST_ADMIN = "would leave no active administrator"
    DUPLICATE_IN_FILE = "duplicate of an earlier row"
    DUPLICATE_IN_DATABASE = "duplicate in database: the visit number belongs to another patient"
    IDENTIFIERS_CONFLICT = "duplicate in database: the identifiers name two patients"
    FORMULA = "a formula instead of a value"
    MERGED = "merged cells"
    CHANGED = "changed since the dry run"


def describe(problem: Problem, detail: object = "") -> str:
    return f"{problem.value}{SEPARATOR}{detail}" if detail != "" else problem.value


def split(text: str) -> tuple[str, str]:
    """(reason, detail) of a stored problem, for the page to translate the reason."""
    reason, _, detail = text.partition(SEPARATOR)
    return reason, detail


class RowProblem(Exception):
    def __init__(self, problem: Problem, detail: object = "") -> None:
        super().__init__(describe(problem, detail))
        self.problem = problem
        self.detail = detail
